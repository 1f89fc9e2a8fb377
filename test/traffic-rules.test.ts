/**
 * Traffic rules end to end: greeters registered in a real etcd with version and zone labels,
 * rules written through the traffic store, clients dialling `etcd:///greeter` with each of the
 * rule-aware balancers.
 */
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { createClient, createServer, etcdRegistry, Status, type ClientOptions, type EtcdRegistry, type Server } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { canaryRule } from "../runtime/balancing/rule-builders";
import { TrafficRuleError } from "../runtime/balancing/rule-errors";
import { trafficKeys } from "../registry/etcd/traffic-keys";
import { openTrafficStore, type TrafficStore } from "../traffic/store";
import { captureLogger } from "./helpers/capture-logger";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

const FLEET = [
  { id: "v1-a", version: "v1", zone: "z1" },
  { id: "v1-b", version: "v1", zone: "z2" },
  { id: "v2-a", version: "v2", zone: "z1" },
  { id: "v2-b", version: "v2", zone: "z2" },
];

describe("traffic rules over etcd:/// with real greeters", function () {
  this.timeout(120_000);
  const namespace = uniqueNamespace();
  const servers = new Map<string, { server: Server; registry: EtcdRegistry }>();
  const clients: { $close(): void }[] = [];
  let discovery: EtcdRegistry;
  let store: TrafficStore;
  const logger = captureLogger();

  after(async function () {
    this.timeout(30_000);
    for (const c of clients.splice(0)) c.$close();
    for (const { server, registry } of servers.values()) {
      await server.shutdown({ graceMs: 100 });
      await registry.close();
    }
    store?.close();
    await discovery?.close();
  });
  const fixture = useEmbeddedEtcd();

  async function startInstance(spec: { id: string; version: string; zone: string }): Promise<void> {
    const registry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: 10 }); // nothing waits for expiry; a starved process stays registered
    const server = createServer({ name: "greeter", registry, instance: { id: spec.id, version: spec.version, zone: spec.zone } });
    server.add(GreeterDefinition, greeterHandlers(spec.id));
    await server.listen("127.0.0.1:0");
    servers.set(spec.id, { server, registry });
  }

  async function stopInstance(id: string): Promise<void> {
    const entry = servers.get(id)!;
    servers.delete(id);
    await entry.server.shutdown({ graceMs: 100 });
    await entry.registry.close();
  }

  function client(options: ClientOptions = {}) {
    const c = createClient(GreeterDefinition, "etcd:///greeter", { discovery, ...options });
    clients.push(c);
    return c;
  }
  type Greeter = ReturnType<typeof client>;

  /** Who serves `n` calls, by instance id. */
  async function served(greeter: Greeter, n: number, metadata: (i: number) => Record<string, string> = () => ({})): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => greeter.sayHello({ name: `n${i}` }, { deadlineMs: 10_000, metadata: metadata(i) })));
    for (const r of replies) counts.set(r.servedBy, (counts.get(r.servedBy) ?? 0) + 1);
    return counts;
  }
  const ids = (counts: Map<string, number>) => [...counts.keys()].sort();

  before(async function () {
    this.timeout(60_000);
    discovery = etcdRegistry({ endpoints: fixture.endpoints, namespace, logger });
    store = openTrafficStore({ service: "greeter", endpoints: fixture.endpoints, namespace, author: "spec" });
    await Promise.all(FLEET.map(startInstance));
    await waitFor(async () => (await discovery.list("greeter")).length === FLEET.length, { timeoutMs: 20_000, what: "4 instances registered" });
  });

  for (const balancer of ["round_robin", "p2c", "least_request", { consistentHash: {} }] as const) {
    const name = typeof balancer === "string" ? balancer : "consistent_hash";
    it(`${name}: a rule written in etcd takes effect live, without a restart, and a removed rule frees every instance`, async () => {
      const greeter = client({ balancer });
      await waitFor(async () => ids(await served(greeter, 80)).length === 4, { timeoutMs: 10_000, what: "calls on all four" });
      await store.write({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ to: [{ subset: "v2" }] }] }, { comment: "all to v2" });
      await waitFor(async () => ids(await served(greeter, 20)).every((id) => id.startsWith("v2")), { timeoutMs: 10_000, what: "calls only on v2" });
      expect(ids(await served(greeter, 80))).to.deep.equal(["v2-a", "v2-b"]);
      await store.remove();
      await waitFor(async () => ids(await served(greeter, 80)).length === 4, { timeoutMs: 10_000, what: "calls on all four again" });
    });
  }

  it("routes by header match first, then splits by weight sticky per user", async () => {
    const greeter = client({ balancer: "round_robin" });
    const v = await store.write({
      subsets: { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } },
      sticky: { header: "x-user" },
      routes: [
        { name: "testers", match: { headers: { "x-tester": "yes" } }, to: [{ subset: "canary" }] },
        { to: [{ subset: "stable", weight: 80 }, { subset: "canary", weight: 20 }] },
      ],
    });
    await waitFor(async () => ids(await served(greeter, 20, () => ({ "x-tester": "yes" }))).every((id) => id.startsWith("v2")), { timeoutMs: 10_000, what: "testers on v2" });
    const side = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) => greeter.sayHello({ name: "x" }, { deadlineMs: 10_000, metadata: { "x-user": `user-${i}` } }).then((r) => [`user-${i}`, r.servedBy.slice(0, 2)] as const)),
      );
      for (const [user, version] of replies) {
        if (round > 0) expect(version, `${user} stays on its side`).to.equal(side.get(user));
        side.set(user, version);
      }
    }
    const canaryShare = [...side.values()].filter((x) => x === "v2").length / side.size;
    expect(canaryShare).to.be.within(0.1, 0.3);
    expect((await store.current())!.version).to.equal(v.version);
  });

  it("a method match sends one method to a subset and leaves the others alone", async () => {
    const greeter = client({ balancer: "p2c", retry: true });
    await store.write({ subsets: { v1: { labels: { version: "v1" } } }, routes: [{ match: { method: "SayHello" }, to: [{ subset: "v1" }] }] });
    await waitFor(async () => ids(await served(greeter, 40)).every((id) => id.startsWith("v1")), { timeoutMs: 10_000, what: "SayHello only on v1" });
    const streamed = new Set<string>();
    for (let i = 0; i < 40; i++) {
      for await (const r of greeter.streamHellos({ name: "s", count: 1 }, { deadlineMs: 10_000 })) streamed.add(r.servedBy);
    }
    expect([...streamed].some((id) => id.startsWith("v2")), "other methods still reach v2").to.equal(true);
  });

  it("falls back to the rest when the subset has nothing, or fails with UNAVAILABLE under fallback: fail", async () => {
    const greeter = client({ balancer: "round_robin" });
    await store.write({ subsets: { v3: { labels: { version: "v3" } } }, routes: [{ to: [{ subset: "v3" }] }], fallback: "rest" });
    await waitFor(async () => (await store.current())?.value.fallback === "rest");
    expect(ids(await served(greeter, 40))).to.have.length(4);
    await store.write({ subsets: { v3: { labels: { version: "v3" } } }, routes: [{ to: [{ subset: "v3" }] }], fallback: "fail" });
    const err = await waitFor(
      async () => {
        try {
          await greeter.sayHello({ name: "x" }, { deadlineMs: 5000 });
          return undefined;
        } catch (e) {
          return e as { code: number; message: string };
        }
      },
      { timeoutMs: 10_000, what: "a call refused by the rule" },
    );
    expect(err.code).to.equal(Status.UNAVAILABLE);
    expect(err.message).to.match(/subset "v3" has no READY instance and its fallback is "fail"/);
    await store.remove();
  });

  it("prefers the caller's zone and spills over when that zone has no instance left", async () => {
    await store.write({ zone: { prefer: true } });
    const greeter = client({ balancer: "round_robin", zone: "z2" });
    await waitFor(async () => ids(await served(greeter, 40)).every((id) => id.endsWith("-b")), { timeoutMs: 10_000, what: "calls only in z2" });
    await startInstance({ id: "v3-c", version: "v3", zone: "z3" });
    const z3 = client({ balancer: "p2c", zone: "z3" });
    await waitFor(async () => ids(await served(z3, 20)).join() === "v3-c", { timeoutMs: 10_000, what: "a z3 caller on the z3 instance" });
    await stopInstance("v3-c");
    await waitFor(async () => ids(await served(z3, 40)).length >= 3, { timeoutMs: 15_000, what: "z3 spills over to other zones" });
    await store.remove();
  });

  it("refuses a garbage rule on write, and a client keeps the last good rule when one lands in etcd anyway, warning once", async () => {
    let refused: unknown;
    try {
      await store.write({ routes: [{ match: { headers: { "x-user": { regex: "(" } } }, to: [{ subset: "nope" }] }] });
    } catch (e) {
      refused = e;
    }
    expect(refused).to.be.instanceOf(TrafficRuleError);
    expect((refused as Error).message).to.match(/^routes\[0\]\.match\.headers\.x-user\.regex: invalid regular expression/);

    const greeter = client({ balancer: "round_robin" });
    const good = await store.write({ subsets: { v1: { labels: { version: "v1" } } }, routes: [{ to: [{ subset: "v1" }] }] });
    await waitFor(async () => ids(await served(greeter, 20)).every((id) => id.startsWith("v1")), { timeoutMs: 10_000, what: "calls on v1" });
    const warnings = () => logger.matching("ignoring an invalid traffic rule").length;
    const before = warnings();
    const raw = fixture.rawEtcd();
    const key = trafficKeys(namespace, "greeter").current;
    await raw.put(key).value(JSON.stringify({ version: good.version + 1, value: { routes: "everything to v9" } }));
    await waitFor(() => warnings() === before + 1, { timeoutMs: 10_000, what: "one warning" });
    expect(logger.matching("ignoring an invalid traffic rule").at(-1)!.fields.reason).to.match(/routes: must be a list/);
    for (let i = 0; i < 3; i++) expect(ids(await served(greeter, 40)).every((id) => id.startsWith("v1")), "last good rule still in force").to.equal(true);
    await raw.put(key).value("not json at all");
    await waitFor(() => warnings() === before + 2, { timeoutMs: 10_000, what: "a second warning for a second bad value" });
    expect(ids(await served(greeter, 40)).every((id) => id.startsWith("v1"))).to.equal(true);
    // A valid write repairs it; history is intact.
    const repaired = await store.write({}, { comment: "repair" });
    await waitFor(async () => ids(await served(greeter, 80)).length === 4, { timeoutMs: 10_000, what: "the repaired (empty) rule in force" });
    expect((await store.history()).map((h) => h.version)).to.include.members([good.version, repaired.version]);
  });

  it("a plain grpc-js client that imports the registration module obeys the rule with protomesh_round_robin", async () => {
    require("../registry/etcd/register");
    await store.write(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 100 }));
    const raw = new grpc.Client("etcd:///greeter", grpc.credentials.createInsecure(), {
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ protomesh_round_robin: {} }] }),
      "grpc.internal.no_subchannel.protomesh.discovery": discovery,
    });
    try {
      const call = () =>
        new Promise<string>((resolve, reject) => {
          const m = GreeterDefinition.methods.sayHello;
          raw.makeUnaryRequest(m.path, (x: unknown) => Buffer.from(m.requestSerialize(x as never)), (b: Buffer) => m.responseDeserialize(b), { name: "raw" }, (err, res) =>
            err ? reject(err) : resolve((res as { servedBy: string }).servedBy),
          );
        });
      await waitFor(async () => (await Promise.all(Array.from({ length: 20 }, call))).every((id) => id.startsWith("v2")), { timeoutMs: 10_000, what: "plain client on v2" });
    } finally {
      raw.close();
      await store.remove();
    }
  });
});
