import { expect } from "chai";
import { Status, type Registrar, type Server } from "protomesh";
import { etcdRegistry } from "../registry/etcd/registry";
import { startGreeter, greeterClient, GreeterDefinition } from "./helpers/greeter";
import { HealthClient } from "./helpers/health-client";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { Recorder, waitFor } from "./helpers/wait";

const GREETER = GreeterDefinition.typeName;

/** A registrar that runs `onDeregister` when the server withdraws its registration. */
function probingRegistrar(onDeregister: () => Promise<void>): Registrar {
  return {
    async register(registration) {
      return {
        instance: { id: "probe-1", service: registration.service, address: registration.address, weight: 1, metadata: {}, startedAt: new Date().toISOString() } as never,
        deregister: onDeregister,
      };
    },
    async close() {},
  };
}

describe("health", () => {
  const clients: HealthClient[] = [];
  const servers: Server[] = [];
  const health = (address: string) => {
    const c = new HealthClient(address);
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 500 })));
  });

  it("reports SERVING for the whole server and each added service once listening", async () => {
    const { server, address } = await startGreeter();
    servers.push(server);
    const client = health(address);
    expect(await client.check("")).to.equal("SERVING");
    expect(await client.check(GREETER)).to.equal("SERVING");
    expect(server.health.status(GREETER)).to.equal("SERVING");
  });

  it("answers Check for an unknown service with NOT_FOUND and Watch with SERVICE_UNKNOWN", async () => {
    const { server, address } = await startGreeter();
    servers.push(server);
    const client = health(address);
    const err = (await client.check("no.such.Service").catch((e: unknown) => e)) as { code: number };
    expect(err.code).to.equal(Status.NOT_FOUND);
    const updates = new Recorder<string>();
    const call = client.watch("no.such.Service", updates.push);
    expect(await updates.next()).to.equal("SERVICE_UNKNOWN");
    // The name becomes known once someone reports on it.
    server.health.set("no.such.Service", "SERVING");
    expect(await updates.next()).to.equal("SERVING");
    call.cancel();
  });

  it("lets a handler mark its own service NOT_SERVING, and Watch pushes each change", async () => {
    let server!: Server;
    const started = await startGreeter({
      async sayHello(req) {
        server.health.set(GREETER, req.name === "down" ? "NOT_SERVING" : "SERVING");
        return { message: "ok" };
      },
    });
    server = started.server;
    servers.push(server);
    const client = health(started.address);
    const updates = new Recorder<string>();
    const call = client.watch(GREETER, updates.push);
    expect(await updates.next()).to.equal("SERVING");

    const greeter = greeterClient(started.address);
    await greeter.sayHello({ name: "down" });
    expect(await updates.next()).to.equal("NOT_SERVING");
    expect(await client.check(GREETER)).to.equal("NOT_SERVING");
    expect(await client.check(""), "the server as a whole").to.equal("SERVING");
    await greeter.sayHello({ name: "up" });
    expect(await updates.next()).to.equal("SERVING");
    greeter.$close();
    call.cancel();
  });

  it("goes NOT_SERVING as shutdown starts, before the registration is withdrawn, and ends Watch streams", async () => {
    const log: string[] = [];
    let address = "";
    const updates = new Recorder<string>();
    const { server, address: bound } = await startGreeter({}, {
      name: "greeter",
      registry: probingRegistrar(async () => {
        // The server still accepts calls here: what a health checker sees while the lease is revoked.
        await updates.next((u) => u === "NOT_SERVING", { what: "NOT_SERVING on the watch" });
        log.push(`watch saw NOT_SERVING`);
        log.push(`deregister: check says ${await health(address).check(GREETER)}`);
        const late = new Recorder<string>();
        health(address).watch("", late.push);
        log.push(`deregister: new watch gets ${await late.next()} then ${await late.next()}`);
      }),
      deregisterDelayMs: 0,
    });
    address = bound;
    const client = health(address);
    client.watch(GREETER, (u) => {
      log.push(`watch: ${u}`);
      updates.push(u);
    });
    expect(await updates.next()).to.equal("SERVING");
    server.on("draining", () => void log.push("draining listener"));

    await server.shutdown({ graceMs: 5000 });
    await waitFor(() => log.includes("watch: END"), { what: "the watch to end" });
    // The watch's END may arrive at any point after its NOT_SERVING; everything else is ordered.
    expect(log.filter((l) => l !== "watch: END")).to.deep.equal([
      "watch: SERVING",
      "draining listener",
      "watch: NOT_SERVING",
      "watch saw NOT_SERVING",
      "deregister: check says NOT_SERVING",
      "deregister: new watch gets NOT_SERVING then END",
    ]);
    expect(log.indexOf("watch: END")).to.be.greaterThan(log.indexOf("watch: NOT_SERVING"));
    expect(server.health.status(GREETER)).to.equal("NOT_SERVING");
  });

  it("does not hold shutdown open for Watch streams", async () => {
    const { server, address } = await startGreeter();
    const updates = new Recorder<string>();
    health(address).watch("", updates.push);
    expect(await updates.next()).to.equal("SERVING");
    const t0 = Date.now();
    await server.shutdown({ graceMs: 5000 });
    expect(Date.now() - t0).to.be.lessThan(1000);
    expect(await updates.next((u) => u !== "NOT_SERVING")).to.equal("END");
  });

  it("can be switched off (the status board still answers in process)", async () => {
    const { server, address } = await startGreeter({}, { health: false });
    servers.push(server);
    const err = (await health(address).check("").catch((e: unknown) => e)) as { code: number };
    expect(err.code).to.equal(Status.UNIMPLEMENTED);
    expect(server.health.status("")).to.equal("SERVING");
  });

  describe("with a real etcd registry", function () {
    this.timeout(20_000);
    const fixture = useEmbeddedEtcd();

    it("answers NOT_SERVING while the lease is being revoked, and the key is gone after shutdown", async () => {
      const registry = etcdRegistry({ endpoints: fixture.endpoints, namespace: uniqueNamespace() });
      const seen: string[] = [];
      let address = "";
      // The real registrar, with a probe in front of its deregister.
      const probed: Registrar = {
        async register(r) {
          const handle = await registry.register(r);
          return {
            instance: handle.instance,
            deregister: async () => {
              seen.push(`before revoke: ${await health(address).check("")}`);
              await handle.deregister();
            },
          };
        },
        close: () => registry.close(),
      };
      const { server, address: bound } = await startGreeter({}, { name: "greeter", registry: probed });
      address = bound;
      expect(await registry.list("greeter")).to.have.length(1);
      expect(await health(address).check("")).to.equal("SERVING");
      await server.shutdown({ graceMs: 2000 });
      expect(seen).to.deep.equal(["before revoke: NOT_SERVING"]);
      expect(await registry.list("greeter")).to.have.length(0);
      await registry.close();
    });
  });
});
