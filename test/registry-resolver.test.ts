import "../registry/etcd/register";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { instancesFromOptions, type InstanceTable } from "../runtime/balancing/instances";
import { DISCOVERY_OPTION } from "../registry/registry";
import { etcdRegistry, type EtcdRegistrationHandle, type EtcdRegistry } from "../registry/etcd/registry";
import { setDefaultDiscovery } from "../registry/etcd/resolver";
import { captureLogger } from "./helpers/capture-logger";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { Recorder, waitFor } from "./helpers/wait";

// A raw grpc-js service with Buffer messages: the resolver is tested without the framework runtime.
const echoService = {
  who: {
    path: "/protomesh.test.Echo/Who",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");

function who(client: grpc.Client, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>).who(
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!.toString())),
    );
  });
}

async function startServer(name: string): Promise<{ address: string; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(echoService, { who: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, server };
}

// A pass-through LB policy that records the instance table the resolver attaches, then delegates to round_robin.
const CAPTURE_LB = "protomesh_test_capture";
const captured = new Recorder<{ addresses: string[]; table: InstanceTable | undefined; note: string }>();
class CaptureConfig implements grpc.experimental.TypedLoadBalancingConfig {
  getLoadBalancerName() {
    return CAPTURE_LB;
  }
  toJsonObject() {
    return { [CAPTURE_LB]: {} };
  }
  static createFromJson() {
    return new CaptureConfig();
  }
}
class CaptureLoadBalancer implements grpc.experimental.LoadBalancer {
  private readonly child: grpc.experimental.ChildLoadBalancerHandler;
  constructor(helper: grpc.experimental.ChannelControlHelper) {
    this.child = new grpc.experimental.ChildLoadBalancerHandler(helper);
  }
  updateAddressList(
    endpoints: grpc.experimental.StatusOr<grpc.experimental.Endpoint[]>,
    _config: grpc.experimental.TypedLoadBalancingConfig,
    options: grpc.ChannelOptions,
    note: string,
  ): boolean {
    const addresses = endpoints.ok ? endpoints.value.flatMap((e) => e.addresses.map(grpc.experimental.subchannelAddressToString)) : [];
    captured.push({ addresses, table: instancesFromOptions(options), note });
    return this.child.updateAddressList(endpoints, grpc.experimental.parseLoadBalancingConfig({ round_robin: {} }), options, note);
  }
  exitIdle() {
    this.child.exitIdle();
  }
  resetBackoff() {
    this.child.resetBackoff();
  }
  destroy() {
    this.child.destroy();
  }
  getTypeName() {
    return CAPTURE_LB;
  }
}
grpc.experimental.registerLoadBalancerType(CAPTURE_LB, CaptureLoadBalancer, CaptureConfig);

const roundRobin = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };
const capturing = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ [CAPTURE_LB]: {} }] }) };

describe("etcd:/// resolver with a plain grpc-js client", function () {
  this.timeout(30_000);
  const fixture = useEmbeddedEtcd();
  let registry: EtcdRegistry;
  let servers: { address: string; server: grpc.Server; handle: EtcdRegistrationHandle }[] = [];
  const clients: grpc.Client[] = [];

  beforeEach(async () => {
    registry = etcdRegistry({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), ttlSeconds: 2, logger: captureLogger() });
    servers = [];
    for (const name of ["alpha", "beta"]) {
      const s = await startServer(name);
      const handle = await registry.register({ service: "echo", id: name, address: s.address, zone: `zone-${name}`, weight: name === "alpha" ? 1 : 3 });
      servers.push({ ...s, handle });
    }
  });

  afterEach(async () => {
    setDefaultDiscovery(undefined);
    for (const c of clients.splice(0)) c.close();
    await registry.close();
    await Promise.all(servers.map((s) => s.server.forceShutdown()));
  });

  function client(options: grpc.ChannelOptions): grpc.Client {
    const c = new EchoClient("etcd:///echo", grpc.credentials.createInsecure(), options);
    clients.push(c);
    return c;
  }

  it("spreads calls over both registered servers under round_robin, and drops a deregistered one", async () => {
    setDefaultDiscovery(registry);
    const c = client(roundRobin);
    const seen = new Set<string>();
    await waitFor(async () => {
      seen.add(await who(c));
      return seen.size === 2;
    }, { what: "calls reaching both servers" });
    expect([...seen].sort()).to.deep.equal(["alpha", "beta"]);

    await servers[1].handle.deregister();
    // Once the resolver has seen the delete, every call lands on alpha.
    await waitFor(async () => {
      const answers = await Promise.all(Array.from({ length: 10 }, () => who(c)));
      return answers.every((a) => a === "alpha");
    }, { timeoutMs: 3000, what: "beta to stop receiving calls" });
  });

  it("uses the Discovery passed as a channel option", async () => {
    const c = client({ ...roundRobin, [DISCOVERY_OPTION]: registry });
    expect(["alpha", "beta"]).to.include(await who(c));
  });

  it("hands the LB policy the instance table, and reports only when the set changes", async () => {
    const c = client({ ...capturing, [DISCOVERY_OPTION]: registry });
    await who(c);
    const first = await captured.next((u) => u.addresses.length === 2, { what: "both endpoints" });
    expect(first.addresses).to.deep.equal([...servers.map((s) => s.address)].sort());
    const table = first.table!;
    expect(table, "instance table attribute").to.be.instanceOf(Map);
    expect(table.get(servers[0].address)).to.include({ id: "alpha", zone: "zone-alpha", weight: 1 });
    expect(table.get(servers[1].address)).to.include({ id: "beta", zone: "zone-beta", weight: 3 });
    const before = captured.values.length;

    // Writes that do not change the set: an identical re-put, another service.
    const raw = fixture.rawEtcd();
    const key = servers[0].handle.key;
    const current = await raw.kv.range({ key: Buffer.from(key) });
    await raw.kv.put({ key: Buffer.from(key), value: current.kvs[0].value, lease: current.kvs[0].lease });
    await registry.register({ service: "other", address: "127.0.0.1:9" });
    // A change that does: beta leaves. Its update must be the very next one.
    await servers[1].handle.deregister();
    const next = await captured.next(() => true, { what: "update after deregister" });
    expect(next.addresses).to.deep.equal([servers[0].address]);
    expect(captured.values.length).to.equal(before + 1);
  });

  it("reports zero instances as an empty list with a note, and calls fail at once with it", async () => {
    setDefaultDiscovery(registry);
    for (const options of [{}, roundRobin]) {
      const c = new EchoClient("etcd:///nobody", grpc.credentials.createInsecure(), options);
      clients.push(c);
      const err = await who(c).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.include("no instances of nobody registered");
    }
    const watching = new EchoClient("etcd:///nobody", grpc.credentials.createInsecure(), capturing);
    clients.push(watching);
    watching.getChannel().getConnectivityState(true);
    const update = await captured.next((u) => u.addresses.length === 0 && u.note !== "" && u.table !== undefined, { what: "empty update" });
    expect(update.note).to.equal("no instances of nobody registered");
    expect(update.table?.size).to.equal(0);
  });

  it("fails calls at once, never reaching old servers, after the last instance deregisters", async () => {
    setDefaultDiscovery(registry);
    const c = client(roundRobin);
    await who(c);
    await Promise.all(servers.map((s) => s.handle.deregister()));
    const err = await waitFor(
      () => who(c, 1000).then(() => undefined, (e: grpc.ServiceError) => e),
      { what: "calls to fail" },
    );
    expect(err.code).to.equal(grpc.status.UNAVAILABLE);
    expect(err.details).to.include("no instances of echo registered");
  });

  it("fails with UNAVAILABLE and says why when etcd is unreachable before the first list", async () => {
    const port = await deadPort();
    const unreachable = etcdRegistry({ endpoints: [`127.0.0.1:${port}`], callTimeoutMs: 300, logger: captureLogger() });
    try {
      const c = client({ ...roundRobin, [DISCOVERY_OPTION]: unreachable });
      const err = await who(c).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/etcd:\/\/\/echo: no instance list yet, etcd unreachable/);
    } finally {
      await unreachable.close();
    }
  });

  it("keeps serving the known endpoints while etcd is down", async () => {
    const logger = captureLogger();
    const discovery = etcdRegistry({ endpoints: fixture.endpoints, namespace: registry.namespace, logger });
    const c = client({ ...roundRobin, [DISCOVERY_OPTION]: discovery });
    try {
      await who(c);
      const member = fixture.etcd.members[0];
      await member.kill("SIGKILL");
      await waitFor(() => logger.matching("lost contact with etcd").length > 0, { what: "outage noticed" });
      const answers = new Set<string>();
      for (let i = 0; i < 10; i++) answers.add(await who(c));
      expect([...answers].sort()).to.deep.equal(["alpha", "beta"]);
      await member.start();
      await servers[0].handle.whenRegistered();
    } finally {
      await discovery.close();
    }
  });

  it("falls back to a registry from ETCD_ENDPOINTS, and says how to configure one when that is unset", async () => {
    const saved = { endpoints: process.env.ETCD_ENDPOINTS, namespace: process.env.PROTOMESH_NAMESPACE };
    try {
      delete process.env.ETCD_ENDPOINTS;
      const unconfigured = client(roundRobin);
      const err = await who(unconfigured).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/ETCD_ENDPOINTS/).and.match(/setDefaultDiscovery/);

      process.env.ETCD_ENDPOINTS = fixture.endpoints.join(",");
      process.env.PROTOMESH_NAMESPACE = registry.namespace;
      expect(["alpha", "beta"]).to.include(await who(client(roundRobin)));
    } finally {
      for (const [name, value] of [["ETCD_ENDPOINTS", saved.endpoints], ["PROTOMESH_NAMESPACE", saved.namespace]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("rejects a target with an authority or a bad service name at channel creation", () => {
    expect(() => new EchoClient("etcd://host/echo", grpc.credentials.createInsecure())).to.throw(/etcd:\/\/\/<service>/);
    expect(() => new EchoClient("etcd:///a/b", grpc.credentials.createInsecure())).to.throw(/invalid service/);
  });
});
