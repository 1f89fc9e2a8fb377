/**
 * Registration and discovery end to end: greeter server processes register in a
 * real etcd; a framework client dials `etcd:///greeter` while instances come, go,
 * get killed, while etcd restarts, compacts, and while junk sits under the prefix.
 * The client's registry reaches etcd through a TCP proxy the spec can cut.
 */
import { expect } from "chai";
import { createClient, createServer, etcdRegistry, Status, type ClientOptions, type EtcdRegistry } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { captureLogger, type CapturedLogger } from "./helpers/capture-logger";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { startGreeterProcess, type GreeterProcess } from "./helpers/greeter-process";
import { moreCalls, steadyLoad, tally, tapDiscovery, type SetChange } from "./helpers/mesh";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp-proxy";
import { waitFor, type Recorder } from "./helpers/wait";
import { decodeInstance } from "../registry/etcd/keys";

const TTL_SECONDS = 2;
/** Every reply waits this long, so a steady load always has calls in flight on every instance. */
const DELAY_MS = 50;

describe("mesh: registration and discovery with greeter processes", function () {
  this.timeout(150_000);
  const namespace = uniqueNamespace();
  const prefix = `/protomesh/${namespace}/services/greeter/`;
  const live = new Map<string, GreeterProcess>();
  const clients: { $close(): void }[] = [];
  let registry: EtcdRegistry;
  let logger: CapturedLogger;
  let sets: Recorder<SetChange>;
  let proxy: TcpProxy;
  let greeter: ReturnType<typeof client>;

  // Defined before the etcd fixture's own `after`, so instances deregister while etcd still runs.
  after(async function () {
    this.timeout(20_000);
    for (const c of clients.splice(0)) c.$close();
    await Promise.all([...live.values()].map((p) => p.stop()));
    await registry?.close();
    await proxy?.close();
  });
  const fixture = useEmbeddedEtcd();

  const start = async (id: string) => {
    const p = await startGreeterProcess({ etcdEndpoints: fixture.endpoints, ttlSeconds: TTL_SECONDS, namespace, id, version: "1.4.2", delayMs: DELAY_MS, graceMs: 2000 });
    live.set(id, p);
    return p;
  };

  function client(options: ClientOptions = {}) {
    const c = createClient(GreeterDefinition, "etcd:///greeter", { discovery: tapped, ...options });
    clients.push(c);
    return c;
  }
  let tapped: ReturnType<typeof tapDiscovery>["discovery"];

  const call = (c: typeof greeter) => async () => (await c.sayHello({ name: "load" }, { deadlineMs: 5000 })).servedBy;
  const sameIds = (ids: Iterable<string>) => JSON.stringify([...ids].sort());
  /** Waits until the set last handed to the client's resolver is exactly `ids`. */
  const clientSees = (ids: Iterable<string>, timeoutMs = 10_000): Promise<SetChange> => {
    const want = sameIds(ids);
    return waitFor(() => (JSON.stringify(sets.last?.ids) === want ? sets.last : undefined), { timeoutMs, what: `client set ${want}` });
  };
  /** Instance id → the lease holding its key. */
  const leasesInEtcd = async () => {
    const res = await fixture.rawEtcd().getAll().prefix(prefix).exec();
    return new Map(res.kvs.map((kv) => [kv.key.toString().slice(prefix.length), kv.lease]));
  };
  /** Ids of the valid instance entries in etcd now. */
  const idsInEtcd = async () => {
    const res = await fixture.rawEtcd().getAll().prefix(prefix).exec();
    return res.kvs.flatMap((kv) => {
      const decoded = decodeInstance({ prefix, service: "greeter" }, kv.key, kv.value);
      return decoded.ok ? [decoded.instance.id] : [];
    });
  };

  before(async function () {
    this.timeout(150_000);
    proxy = await startTcpProxy(fixture.endpoints[0]);
    logger = captureLogger();
    registry = etcdRegistry({ endpoints: [proxy.endpoint], namespace, ttlSeconds: TTL_SECONDS, logger });
    ({ discovery: tapped, sets } = tapDiscovery(registry));
    await Promise.all(["g1", "g2", "g3"].map(start));
    greeter = client();
    await greeter.sayHello({ name: "first" }, { deadlineMs: 5000 }); // a channel resolves on its first call
    await clientSees(["g1", "g2", "g3"]);
  });

  it("registers every instance under a lease, with address, version, zone, weight and labels that the client side sees", async () => {
    const raw = fixture.rawEtcd();
    const res = await raw.getAll().prefix(prefix).exec();
    expect(res.kvs.map((kv) => kv.key.toString()).sort()).to.deep.equal(["g1", "g2", "g3"].map((id) => prefix + id));
    for (const kv of res.kvs) {
      const value = JSON.parse(kv.value.toString());
      const p = live.get(value.id)!;
      expect(value).to.include({ id: p.id, service: "greeter", address: p.address, version: "1.4.2", zone: "", weight: 1 });
      expect(value.metadata).to.deep.equal({});
      expect(value.startedAt).to.be.a("number");
      expect(kv.lease).to.not.equal("0");
      const lease = await raw.leaseClient.leaseTimeToLive({ ID: kv.lease });
      expect(Number(lease.grantedTTL)).to.equal(TTL_SECONDS);
      expect(Number(lease.TTL)).to.be.within(1, TTL_SECONDS);
    }

    // Zone and labels, from a server's `instance` option, under another service name.
    const ownRegistry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: TTL_SECONDS });
    const server = createServer({
      name: "greeter-meta",
      registry: ownRegistry,
      instance: { id: "meta-1", version: "2.0.0", zone: "eu-west-1a", weight: 3, metadata: { track: "canary", build: "7f3c" } },
    });
    server.add(GreeterDefinition, greeterHandlers("meta-1"));
    try {
      await server.listen("127.0.0.1:0");
      const metaSets = tapDiscovery(registry);
      const c = createClient(GreeterDefinition, "etcd:///greeter-meta", { discovery: metaSets.discovery });
      clients.push(c);
      expect((await c.sayHello({ name: "meta" }, { deadlineMs: 5000 })).servedBy).to.equal("meta-1");
      const expected = { id: "meta-1", service: "greeter-meta", address: server.address, version: "2.0.0", zone: "eu-west-1a", weight: 3, metadata: { track: "canary", build: "7f3c" } };
      expect(metaSets.sets.last!.instances).to.have.length(1);
      expect(metaSets.sets.last!.instances[0]).to.deep.include(expected); // what the client's resolver was handed
      expect((await registry.list("greeter-meta"))[0]).to.deep.include(expected);
      const stored = await raw.get(`/protomesh/${namespace}/services/greeter-meta/meta-1`).json();
      expect(stored).to.deep.include(expected);
    } finally {
      await server.shutdown({ graceMs: 100 });
      await ownRegistry.close();
    }
  });

  it("ignores junk under the service prefix (bad JSON, wrong types, huge values) while calls keep flowing", async () => {
    const load = steadyLoad(call(greeter));
    await moreCalls(load, 30);
    const warningsBefore = logger.matching("invalid registry entry").length;
    const raw = fixture.rawEtcd();
    const entry = (id: string, fields: object = {}) =>
      JSON.stringify({ id, service: "greeter", address: "127.0.0.1:1", version: "", zone: "", weight: 1, metadata: {}, startedAt: 1, ...fields });
    const junk: Record<string, string> = {
      "bad-json": "{not json",
      "not-an-object": "[1,2,3]",
      "bad-address": entry("bad-address", { address: 42 }),
      "bad-weight": entry("bad-weight", { weight: "heavy" }),
      "bad-labels": entry("bad-labels", { metadata: { n: 1 } }),
      "wrong-id": entry("someone-else"),
      "huge": entry("huge", { metadata: { blob: "x".repeat(200_000) } }),
      "deeper/key": entry("deeper"),
    };
    for (const [id, value] of Object.entries(junk)) await raw.put(prefix + id).value(value);
    await waitFor(() => logger.matching("invalid registry entry").length >= warningsBefore + 5, { what: "warnings about the junk" });
    await moreCalls(load, 100);
    await load.stop();
    for (const id of Object.keys(junk)) await raw.delete().key(prefix + id);

    expect(load.failures, JSON.stringify(load.failures.slice(0, 3))).to.have.length(0);
    expect(sets.values.every((s) => sameIds(s.ids) === sameIds(["g1", "g2", "g3"])), "the client's set never changed").to.equal(true);
    expect([...tally(load.records.map((r) => r.servedBy!)).keys()].sort()).to.deep.equal(["g1", "g2", "g3"]);
  });

  it("sends calls to a new instance shortly after it registers", async () => {
    const load = steadyLoad(call(greeter));
    await moreCalls(load, 30);
    const watcher = await fixture.rawEtcd().watch().key(prefix + "g4").create();
    let putAt: number | undefined;
    watcher.on("put", () => (putAt ??= Date.now()));
    try {
      await start("g4");
      const first = await waitFor(() => load.records.find((r) => r.servedBy === "g4"), { what: "a call served by g4" });
      await load.stop();
      const learned = sets.values.find((s) => s.ids.includes("g4"))!.at;
      console.log(
        `      registration → client's set ${learned - putAt!} ms, → first call routed to it ${first.startedAt - putAt!} ms (answered after ${first.endedAt - putAt!} ms, ${DELAY_MS} ms handler delay)`,
      );
      expect(first.startedAt - putAt!).to.be.below(1000);
      expect(load.failures).to.have.length(0);
    } finally {
      await watcher.cancel();
    }
  });

  it("drops a gracefully stopped instance from the client's set at once, with no failed call", async () => {
    const load = steadyLoad(call(greeter), { concurrency: 12 });
    await moreCalls(load, 50);
    const stopAt = Date.now();
    const stopping = live.get("g1")!.stop();
    const removed = await clientSees(["g2", "g3", "g4"]);
    await stopping;
    live.delete("g1");
    await moreCalls(load, 50);
    await load.stop();
    console.log(`      graceful stop → removed from the client's set in ${removed.at - stopAt} ms; ${load.records.length} calls, ${load.failures.length} failed`);
    expect(removed.at - stopAt).to.be.below(1000);
    expect(load.failures, JSON.stringify(load.failures.slice(0, 3))).to.have.length(0);
    expect(load.records.filter((r) => r.servedBy === "g1" && r.startedAt > removed.at)).to.have.length(0);
  });

  it("keeps calling the last-known instances while etcd is down, and has every instance back after etcd restarts", async () => {
    const ids = ["g2", "g3", "g4"];
    const load = steadyLoad(call(greeter));
    await moreCalls(load, 30);
    const setsBefore = sets.values.length;
    const leasesBefore = await leasesInEtcd();
    const member = fixture.etcd.members[0];
    await member.kill("SIGKILL");
    const downAt = Date.now();
    // Longer than the lease TTL: every instance's keeper gives its lease up for lost.
    await new Promise((r) => setTimeout(r, (TTL_SECONDS + 1) * 1000));
    const callsDuringOutage = load.records.filter((r) => r.startedAt > downAt).length;
    await member.start();
    const upAt = Date.now();
    // Each keeper re-registers under a fresh lease (etcd restores the old ones, but the keepers have let them go).
    await waitFor(
      async () => {
        const leases = await leasesInEtcd();
        return sameIds(leases.keys()) === sameIds(ids) && ids.every((id) => leases.get(id) !== leasesBefore.get(id));
      },
      { timeoutMs: 15_000, what: "every instance registered again under a new lease" },
    );
    const backAt = Date.now();
    await moreCalls(load, 30);
    await load.stop();
    console.log(`      etcd down ${upAt - downAt} ms: ${callsDuringOutage} calls made meanwhile; all instances in etcd ${backAt - upAt} ms after it returned`);
    expect(callsDuringOutage).to.be.greaterThan(0);
    expect(load.failures, JSON.stringify(load.failures.slice(0, 3))).to.have.length(0);
    expect(sets.values.slice(setsBefore).every((s) => s.ids.length > 0), "the client's set never emptied").to.equal(true);
    expect(sameIds(sets.last!.ids)).to.equal(sameIds(ids));
    expect(logger.matching("lost contact with etcd").length).to.be.at.least(1);
  });

  it("drops a SIGKILLed instance within TTL + 1 s; retried calls never fail, others only while in flight, with UNAVAILABLE", async () => {
    // Five attempts, not the default three: a retry can land on the killed instance again until
    // the balancer has seen its connection drop, and on a loaded machine three jittered
    // backoffs (up to 100 + 200 ms) can all fall inside that window.
    const retrying = client({ retry: { maxAttempts: 5 } });
    const plain = greeter;
    const withRetry = steadyLoad(call(retrying), { concurrency: 12 });
    const without = steadyLoad(call(plain), { concurrency: 12 });
    await Promise.all([moreCalls(withRetry, 60), moreCalls(without, 60)]);
    const killAt = Date.now();
    live.get("g2")!.kill("SIGKILL");
    const removed = await clientSees(["g3", "g4"], (TTL_SECONDS + 3) * 1000);
    await Promise.all([moreCalls(withRetry, 60), moreCalls(without, 60)]);
    await Promise.all([withRetry.stop(), without.stop()]);
    live.delete("g2");

    const removalMs = removed.at - killAt;
    const failed = without.failures;
    console.log(
      `      SIGKILL → removed from the client's set in ${removalMs} ms (TTL ${TTL_SECONDS} s); with retry ${withRetry.failures.length}/${withRetry.records.length} failed, without ${failed.length}/${without.records.length} (${[...tally(failed.map((f) => String(f.code)))].map(([code, n]) => `code ${code} ×${n}`).join(", ")})`,
    );
    expect(removalMs).to.be.below(TTL_SECONDS * 1000 + 1000);
    expect(withRetry.failures, JSON.stringify(withRetry.failures.slice(0, 3))).to.have.length(0);
    expect(failed.length).to.be.within(1, 12);
    for (const f of failed) {
      expect(f.code, f.message).to.equal(Status.UNAVAILABLE);
      expect(f.startedAt, "failed call started after the kill was noticed").to.be.below(killAt + 500);
    }
  });

  it("relists when its watch resumes behind a compaction: calls then reach exactly the instances etcd holds", async () => {
    const raw = fixture.rawEtcd();
    proxy.cut();
    await waitFor(() => logger.matching("lost contact with etcd").length >= 2, { what: "the client noticing" });
    // While the client is away: one instance leaves, one joins, and the history is compacted.
    await live.get("g3")!.stop();
    live.delete("g3");
    await start("g5");
    for (let i = 0; i < 20; i++) await raw.put(`/protomesh/${namespace}/scratch/${i % 3}`).value(String(i));
    const head = await raw.get(`/protomesh/${namespace}/scratch/0`).exec();
    await raw.kv.compact({ revision: head.header.revision, physical: true });
    proxy.restore();

    const expected = await idsInEtcd();
    expect(expected.sort()).to.deep.equal(["g4", "g5"]);
    await clientSees(expected);
    expect(logger.matching("watch fell behind etcd compaction").length).to.be.at.least(1);
    // The client's set is right; its channel connects to the newcomer in the next few ms, and
    // round_robin sends only to READY instances meanwhile. Every instance etcd holds must serve,
    // and nothing else may.
    const servedBy = new Set<string>();
    const until = Date.now() + 5000;
    while (servedBy.size < expected.length && Date.now() < until) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => greeter.sayHello({ name: "after" }, { deadlineMs: 5000 })));
      for (const r of replies) servedBy.add(r.servedBy);
    }
    expect([...servedBy].sort()).to.deep.equal(expected);
  });
});
