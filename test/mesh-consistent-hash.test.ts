/**
 * consistent_hash end to end: greeter server processes register in a real etcd,
 * framework clients dial `etcd:///greeter`, and each reply's `servedBy` says
 * which instance a key landed on.
 */
import { expect } from "chai";
import { createClient, createServer, etcdRegistry, type ClientOptions, type EtcdRegistry, type Server } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { startGreeterProcess, type GreeterProcess } from "./helpers/greeter-process";
import { keys, ownersOf, tally, tapDiscovery, type SetChange } from "./helpers/mesh";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp-proxy";
import { waitFor, type Recorder } from "./helpers/wait";
import { HashRing } from "../runtime/balancing/hash-ring";
import type { Discovery } from "../registry/registry";

// Nothing here waits for a lease to expire; a long TTL keeps a starved process on a loaded machine registered.
const TTL_SECONDS = 10;
const FIRST = 9;

describe("mesh: consistent_hash over etcd:/// with greeter processes", function () {
  this.timeout(180_000);
  const namespace = uniqueNamespace();
  const processes: GreeterProcess[] = [];
  const clients: { $close(): void }[] = [];
  let registry: EtcdRegistry;
  let discovery: Discovery;
  let sets: Recorder<SetChange>;
  let inProcess: { server: Server; registry: EtcdRegistry } | undefined;
  let proxy: TcpProxy | undefined;

  // Defined before the etcd fixture's own `after`, so instances deregister while etcd still runs.
  after(async function () {
    this.timeout(20_000);
    for (const c of clients.splice(0)) c.$close();
    await Promise.all(processes.map((p) => p.stop()));
    if (inProcess) {
      await inProcess.server.shutdown({ graceMs: 100 });
      await inProcess.registry.close();
    }
    await proxy?.close();
    await registry.close();
  });
  const fixture = useEmbeddedEtcd();

  const start = (id: string, extra: { weight?: number } = {}) =>
    startGreeterProcess({ etcdEndpoints: fixture.endpoints, ttlSeconds: TTL_SECONDS, namespace, id, graceMs: 1000, ...extra }).then((p) => {
      processes.push(p);
      return p;
    });

  function client(balancer: ClientOptions["balancer"], options: ClientOptions = {}) {
    const c = createClient(GreeterDefinition, "etcd:///greeter", { discovery, balancer, ...options });
    clients.push(c);
    return c;
  }

  type Greeter = ReturnType<typeof client>;
  const byKey = (c: Greeter) => async (key: string) => (await c.sayHello({ name: key }, { hashKey: key, deadlineMs: 10_000 })).servedBy;

  /** Waits until the set last handed to the clients' resolvers is exactly `ids`. */
  const seen = (ids: string[]) => {
    const want = JSON.stringify([...ids].sort());
    return waitFor(() => JSON.stringify(sets.last?.ids) === want, { timeoutMs: 30_000, what: `client set ${want}` });
  };

  before(async function () {
    this.timeout(150_000);
    registry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: TTL_SECONDS });
    ({ discovery, sets } = tapDiscovery(registry));
    const started = Date.now();
    await Promise.all(Array.from({ length: FIRST }, (_, i) => start(`ch-${String(i + 1).padStart(2, "0")}`)));
    console.log(`      (${FIRST} greeter processes up in ${Date.now() - started} ms)`);
  });

  it("keeps one key on one instance over 1,000 calls", async () => {
    const greeter = client({ consistentHash: {} });
    const served: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const replies = await Promise.all(Array.from({ length: 100 }, () => greeter.sayHello({ name: "ada" }, { hashKey: "user-42", deadlineMs: 10_000 })));
      served.push(...replies.map((r) => r.servedBy));
    }
    expect(served).to.have.length(1000);
    expect(new Set(served).size).to.equal(1);
  });

  it("moves at most 1.5/N of 10,000 keys when a 10th instance joins, all to the newcomer, and then spreads load within 1.15 of the mean", async () => {
    const greeter = client({ consistentHash: {} });
    const ks = keys(10_000);
    const ids = processes.map((p) => p.id);
    await seen(ids);
    let t = Date.now();
    const before = await ownersOf(ks, byKey(greeter));
    const callMs = Date.now() - t;
    expect(new Set(before.values()).size).to.equal(FIRST);

    const newcomer = await start("ch-10");
    await seen([...ids, newcomer.id]);
    t = Date.now();
    const after = await ownersOf(ks, byKey(greeter));
    const moved = ks.filter((k) => before.get(k) !== after.get(k));
    for (const k of moved) expect(after.get(k), `key ${k}`).to.equal(newcomer.id);
    const n = FIRST + 1;
    console.log(
      `      keys moved: ${moved.length}/${ks.length} = ${(moved.length / ks.length).toFixed(4)} (1/N = ${(1 / n).toFixed(4)}, bound 1.5/N = ${(1.5 / n).toFixed(4)}); 10,000 calls in ${callMs} ms, then ${Date.now() - t} ms`,
    );
    expect(moved.length / ks.length).to.be.at.most(1.5 / n);
    expect(moved.length / ks.length).to.be.at.least(0.5 / n);

    // Load over 10 equal instances at the default vnodes. 10,000 calls sample each share with
    // ~3 % noise, too coarse for a 1.15 bound; so check that the client routed every key exactly
    // as a ring of the registered addresses says, then take that ring's shares over many keys.
    const instances = await registry.list("greeter");
    const idAt = new Map(instances.map((i) => [i.address, i.id]));
    const ring = new HashRing(instances.map((i) => ({ key: i.address, weight: i.weight })));
    for (const k of ks) expect(after.get(k), k).to.equal(idAt.get(ring.owner(k)!.key));
    const sampled = [...tally(after.values()).values()];
    const shares = [...tally(keys(200_000, "load").map((k) => ring.owner(k)!.key)).values()];
    const peakOverMean = Math.max(...shares) / (200_000 / n);
    console.log(
      `      10 instances: 10,000 calls per instance ${sampled.sort((a, b) => a - b).join(" ")} (peak/mean ${(Math.max(...sampled) / (ks.length / n)).toFixed(3)}); ring shares peak/mean ${peakOverMean.toFixed(3)}`,
    );
    expect(shares).to.have.length(n);
    expect(peakOverMean).to.be.at.most(1.15);
  });

  it("keeps every instance under c × mean in-flight calls with bounded load on, even for one hot key", async () => {
    const ids = processes.map((p) => p.id);
    await seen(ids);
    const plain = client({ consistentHash: {} });
    const bounded = client({ consistentHash: { boundedLoad: true } });
    const burst = 400;
    // One synchronous loop starts every call before any reply can be read: all of them are in flight together.
    const fire = (c: Greeter) => Promise.all(Array.from({ length: burst }, (_, i) => c.sayHello({ name: `b${i}` }, { hashKey: "hot", deadlineMs: 10_000 })));
    const warm = await fire(plain); // also connects both channels' members before the measured burst
    await fire(bounded);
    const unbounded = tally(warm.map((r) => r.servedBy));
    const spread = tally((await fire(bounded)).map((r) => r.servedBy));
    const cap = Math.ceil((1.25 * burst) / ids.length);
    console.log(`      hot key, ${burst} concurrent calls: without bound ${JSON.stringify([...unbounded.values()])}; with c=1.25 max ${Math.max(...spread.values())} (cap ${cap}) over ${spread.size} instances`);
    expect([...unbounded.values()]).to.deep.equal([burst]);
    expect(Math.max(...spread.values())).to.be.at.most(cap);
    expect(spread.size).to.be.at.least(Math.ceil(burst / cap));
  });

  it("spreads calls without a key round-robin over every instance instead of failing them", async () => {
    const ids = processes.map((p) => p.id);
    await seen(ids);
    const greeter = client({ consistentHash: {} });
    await greeter.sayHello({ name: "warm-up" }, { deadlineMs: 10_000 });
    await waitFor(async () => new Set((await Promise.all(ids.map(() => greeter.sayHello({ name: "x" })))).map((r) => r.servedBy)).size === ids.length, {
      timeoutMs: 10_000,
      what: "every member READY",
    });
    const replies = await Promise.all(Array.from({ length: 10 * ids.length }, () => greeter.sayHello({ name: "no key" }, { deadlineMs: 10_000 })));
    const counts = tally(replies.map((r) => r.servedBy));
    expect([...counts.keys()].sort()).to.deep.equal([...ids].sort());
    expect(Math.max(...counts.values()) - Math.min(...counts.values())).to.be.at.most(2);
  });

  it("routes by the hashKey call option and by the configured header alike, the same way on every client", async () => {
    const viaHeader = client({ consistentHash: { header: "x-user" } });
    const other = client({ consistentHash: {} });
    const ks = keys(300, "hdr");
    const byHeader = await ownersOf(ks, async (k) => (await viaHeader.sayHello({ name: k }, { metadata: { "x-user": k }, deadlineMs: 10_000 })).servedBy);
    const byOption = await ownersOf(ks, byKey(viaHeader));
    const elsewhere = await ownersOf(ks, byKey(other));
    expect(new Set(byHeader.values()).size).to.be.greaterThan(5);
    for (const k of ks) {
      expect(byOption.get(k), k).to.equal(byHeader.get(k));
      expect(elsewhere.get(k), k).to.equal(byHeader.get(k));
    }
  });

  it("gives an instance registered with weight 2 about twice the keys of the others", async () => {
    const heavy = await start("ch-w2", { weight: 2 });
    const ids = processes.map((p) => p.id);
    await seen(ids);
    const list = await registry.list("greeter");
    expect(list.find((i) => i.id === heavy.id)?.weight).to.equal(2);
    const greeter = client({ consistentHash: {} });
    const ks = keys(6000, "w");
    const owners = await ownersOf(ks, byKey(greeter));
    // The client routes exactly as a ring built with the registered weights; that ring's shares,
    // over many keys, give the ratio without the sampling noise of 6,000 calls.
    const idAt = new Map(list.map((i) => [i.address, i.id]));
    const ring = new HashRing(list.map((i) => ({ key: i.address, weight: i.weight })));
    for (const k of ks) expect(owners.get(k), k).to.equal(idAt.get(ring.owner(k)!.key));
    const ratioOf = (counts: Map<string, number>) => {
      const light = ids.filter((id) => id !== heavy.id).map((id) => counts.get(id) ?? 0);
      return (counts.get(heavy.id) ?? 0) / (light.reduce((a, b) => a + b, 0) / light.length);
    };
    const sampled = ratioOf(tally(owners.values()));
    const shares = ratioOf(tally(keys(200_000, "share").map((k) => idAt.get(ring.owner(k)!.key)!)));
    console.log(`      weight 2 vs weight 1: ${sampled.toFixed(2)}× the keys over 6,000 calls; ring shares ${shares.toFixed(2)}×`);
    expect(sampled).to.be.within(1.6, 2.4);
    expect(shares).to.be.within(1.8, 2.2);
  });

  it("gives a reconnecting instance its keys back: a dropped connection moves no keys for good", async () => {
    // An instance reached through a TCP proxy, so the test can cut its connections while it stays registered.
    const port = await deadPort();
    proxy = await startTcpProxy(`127.0.0.1:${port}`);
    const instanceRegistry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: TTL_SECONDS });
    const target = createServer({ name: "greeter", registry: instanceRegistry, instance: { id: "ch-proxied", advertiseAddress: proxy.endpoint } });
    target.add(GreeterDefinition, greeterHandlers("ch-proxied"));
    await target.listen(`127.0.0.1:${port}`);
    inProcess = { server: target, registry: instanceRegistry };
    await seen([...processes.map((p) => p.id), "ch-proxied"]);

    // Calls already on the wire when the connection drops fail with UNAVAILABLE; retries re-pick them.
    const greeter = client({ consistentHash: {} }, {
      retry: true,
      channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 300 },
    });
    const ks = keys(1000, "rc");
    const before = await ownersOf(ks, byKey(greeter));
    const owned = ks.filter((k) => before.get(k) === "ch-proxied");
    expect(owned.length).to.be.greaterThan(0);

    proxy.cut();
    // While its connection is down the proxied instance's keys fall over; nobody else's move.
    const during = await ownersOf(ks, byKey(greeter));
    for (const k of ks) {
      if (before.get(k) === "ch-proxied") expect(during.get(k), k).to.not.equal("ch-proxied");
      else expect(during.get(k), k).to.equal(before.get(k));
    }

    proxy.restore();
    const reconnectedAt = Date.now();
    await waitFor(async () => (await byKey(greeter)(owned[0])) === "ch-proxied", { timeoutMs: 10_000, what: "the proxied instance READY again" });
    const after = await ownersOf(ks, byKey(greeter));
    console.log(`      reconnect: ${owned.length} keys fell over during the cut and were back ${Date.now() - reconnectedAt} ms after restore`);
    for (const k of ks) expect(after.get(k), k).to.equal(before.get(k));
  });
});
