import { expect } from "chai";
import { etcdRegistry, type EtcdRegistrationHandle, type EtcdRegistry } from "../registry/etcd/registry";
import { startEmbeddedEtcd } from "../registry/etcd/embedded";
import { captureLogger } from "./helpers/capture-logger";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

const TTL = 2;

describe("etcd registration (lease keeper)", function () {
  this.timeout(20_000);
  const fixture = useEmbeddedEtcd();
  const open: EtcdRegistry[] = [];

  function registry(options: { ttlSeconds?: number; logger?: ReturnType<typeof captureLogger> } = {}): EtcdRegistry {
    const r = etcdRegistry({
      endpoints: fixture.endpoints,
      namespace: uniqueNamespace(),
      ttlSeconds: options.ttlSeconds ?? TTL,
      logger: options.logger ?? captureLogger(),
    });
    open.push(r);
    return r;
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });

  async function readKey(handle: EtcdRegistrationHandle) {
    const res = await fixture.rawEtcd().kv.range({ key: Buffer.from(handle.key) });
    return res.kvs[0];
  }

  it("puts the instance under a lease with the full JSON value", async () => {
    const r = registry();
    const handle = await r.register({
      service: "greeter",
      id: "g-1",
      address: "127.0.0.1:50051",
      version: "1.2.3",
      zone: "eu-1a",
      weight: 3,
      metadata: { team: "core" },
    });
    expect(handle.state).to.equal("registered");
    expect(handle.key).to.equal(`/protomesh/${r.namespace}/services/greeter/g-1`);
    const kv = await readKey(handle);
    expect(kv, "key in etcd").to.exist;
    expect(kv.lease).to.equal(handle.leaseId).and.not.equal("0");
    const value = JSON.parse(kv.value.toString());
    expect(value).to.deep.equal({
      id: "g-1",
      service: "greeter",
      address: "127.0.0.1:50051",
      version: "1.2.3",
      zone: "eu-1a",
      weight: 3,
      metadata: { team: "core" },
      startedAt: handle.instance.startedAt,
    });
    const ttl = await fixture.rawEtcd().leaseClient.leaseTimeToLive({ ID: handle.leaseId });
    expect(Number(ttl.grantedTTL)).to.equal(TTL);
  });

  it("keeps the key alive for several TTLs", async () => {
    const handle = await registry().register({ service: "greeter", address: "127.0.0.1:50051" });
    const lease = handle.leaseId;
    const changes: string[] = [];
    handle.onStateChange((state) => changes.push(state));
    // Nothing to await here: the behaviour is that time passes and nothing happens.
    await new Promise((r) => setTimeout(r, 2.5 * TTL * 1000));
    expect(changes).to.deep.equal([]);
    expect((await readKey(handle))?.lease).to.equal(lease);
  });

  it("re-puts the key within about 2 s after it is deleted by hand", async () => {
    const logger = captureLogger();
    const handle = await registry({ logger }).register({ service: "greeter", address: "127.0.0.1:50051" });
    const deletedAt = Date.now();
    await fixture.rawEtcd().delete().key(handle.key);
    const kv = await waitFor(() => readKey(handle), { timeoutMs: 2500, what: "key re-put" });
    const took = Date.now() - deletedAt;
    expect(took).to.be.below(2000);
    expect(kv.lease).to.not.equal("0");
    await handle.whenRegistered();
    expect(kv.lease).to.equal(handle.leaseId);
    expect(logger.matching("registration lost")).to.have.length(1);
    expect(logger.matching("re-registered")).to.have.length(1);
  });

  it("re-registers under a new lease after its lease is revoked by hand", async () => {
    const handle = await registry().register({ service: "greeter", address: "127.0.0.1:50051" });
    const oldLease = handle.leaseId!;
    await fixture.rawEtcd().leaseClient.leaseRevoke({ ID: oldLease });
    const kv = await waitFor(async () => {
      const current = await readKey(handle);
      return current && current.lease !== oldLease ? current : undefined;
    }, { timeoutMs: 2500, what: "key under a new lease" });
    const ttl = await fixture.rawEtcd().leaseClient.leaseTimeToLive({ ID: kv.lease });
    expect(Number(ttl.TTL)).to.be.greaterThan(0);
  });

  it("survives an etcd restart shorter than the TTL without losing the registration", async () => {
    const handle = await registry({ ttlSeconds: 3 }).register({ service: "greeter", address: "127.0.0.1:50051" });
    const lease = handle.leaseId;
    const changes: string[] = [];
    handle.onStateChange((state) => changes.push(state));
    const member = fixture.etcd.members[0];
    await member.kill("SIGKILL");
    await member.start();
    // Two keepalive rounds after the restart prove the old lease is still honoured.
    await new Promise((r) => setTimeout(r, 2000));
    expect(changes).to.deep.equal([]);
    expect((await readKey(handle))?.lease).to.equal(lease);
  });

  it("re-registers within TTL+2 s after etcd is SIGKILLed and restarted", async () => {
    const logger = captureLogger();
    const handle = await registry({ logger }).register({ service: "greeter", address: "127.0.0.1:50051" });
    const member = fixture.etcd.members[0];
    const lost = new Promise<void>((resolve) => handle.onStateChange((s) => s === "lost" && resolve()));
    await member.kill("SIGKILL");
    await lost; // etcd unreachable for a whole TTL
    const restartAt = Date.now();
    await member.start();
    await handle.whenRegistered();
    const took = Date.now() - restartAt;
    console.log(`      re-registered ${took} ms after etcd restart began`);
    expect(took).to.be.below((TTL + 2) * 1000);
    expect((await readKey(handle))?.lease).to.equal(handle.leaseId);
    expect(logger.matching("etcd unreachable")).to.have.length(1);
    expect(logger.matching("registration lost")).to.have.length(1);
  });

  it("removes the key at once on deregister", async () => {
    const handle = await registry().register({ service: "greeter", address: "127.0.0.1:50051" });
    const watcher = await fixture.rawEtcd().watch().key(handle.key).create();
    const deleted = new Promise<number>((resolve) => watcher.on("delete", () => resolve(Date.now())));
    const start = Date.now();
    await handle.deregister();
    expect(await readKey(handle)).to.equal(undefined);
    expect((await deleted) - start).to.be.below(500);
    expect(handle.state).to.equal("stopped");
    await watcher.cancel();
  });

  it("close() deregisters what is still registered", async () => {
    const r = registry();
    const a = await r.register({ service: "a", address: "127.0.0.1:1" });
    const b = await r.register({ service: "b", address: "127.0.0.1:2" });
    await r.close();
    expect(await readKey(a)).to.equal(undefined);
    expect(await readKey(b)).to.equal(undefined);
  });

  it("rejects bad registrations with a clear message", async () => {
    const r = registry();
    await expectRejection(r.register({ service: "bad/name", address: "127.0.0.1:1" }), /invalid service/);
    await expectRejection(r.register({ service: "ok", address: "nope" }), /invalid address/);
    await expectRejection(r.register({ service: "ok", address: "127.0.0.1:1", weight: 0 }), /invalid weight/);
    await expectRejection(
      r.register({ service: "ok", address: "127.0.0.1:1", metadata: { big: "x".repeat(5000) } }),
      /over the 4096-byte limit/,
    );
    expect(() => etcdRegistry({ endpoints: fixture.endpoints, ttlSeconds: 1 })).to.throw(/at least 2/);
    expect(() => etcdRegistry({ endpoints: [], namespace: "x" })).to.throw(/no etcd endpoints/);
    expect(() => etcdRegistry({ endpoints: fixture.endpoints, namespace: "a/b" })).to.throw(/invalid registry namespace/);
  });

  it("keeps retrying while etcd is unreachable, without unhandled rejections, and registers once it appears", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const port = await deadPort();
    const logger = captureLogger();
    const r = etcdRegistry({ endpoints: [`127.0.0.1:${port}`], ttlSeconds: TTL, registerWaitMs: 300, onRegisterTimeout: "serve", logger, callTimeoutMs: 500 });
    open.push(r);
    try {
      const handle = await r.register({ service: "greeter", address: "127.0.0.1:50051" });
      expect(handle.state).to.equal("registering");
      expect(logger.matching("not registered: could not register greeter instance")).to.have.length(1);
      // Several retry rounds pass (backoff caps at 2 s) before etcd shows up.
      await new Promise((res) => setTimeout(res, 3000));
      expect(handle.state).to.equal("registering");
      const late = await startEmbeddedEtcd({ clientPort: port });
      try {
        const startedAt = Date.now();
        await handle.whenRegistered();
        console.log(`      registered ${Date.now() - startedAt} ms after etcd became healthy`);
        // Before the first registration register() speaks for it (see the "serve" warning above).
        expect(logger.matching("etcd call failed; retrying")).to.have.length(1);
        expect(logger.matching("etcd reachable again")).to.have.length(1);
        await r.close();
      } finally {
        await late.stop();
      }
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

async function expectRejection(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}
