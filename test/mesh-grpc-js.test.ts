/**
 * A plain grpc-js client (ts-proto's GreeterClient) dialing `etcd:///greeter` after
 * importing only the registration module: greeter server processes, real etcd,
 * balancing and retries from the client's own service config.
 */
import "../registry/etcd/register";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { GreeterClient } from "../gen/examples/greeter/v1/greeter";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd/registry";
import { setDefaultDiscovery } from "../registry/etcd/resolver";
import { HashRing } from "../runtime/balancing/hash-ring";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { startGreeterProcess, type GreeterProcess } from "./helpers/greeter-process";
import { keys, moreCalls, ownersOf, steadyLoad, tally, tapDiscovery, type SetChange } from "./helpers/mesh";
import { waitFor, type Recorder } from "./helpers/wait";

const TTL_SECONDS = 2;
const DELAY_MS = 50;
const SAY_HELLO = { service: "examples.greeter.v1.Greeter", method: "SayHello" };

function serviceConfig(policy: object, retry = false): grpc.ChannelOptions {
  const config = {
    loadBalancingConfig: [policy],
    methodConfig: retry
      ? [{ name: [SAY_HELLO], retryPolicy: { maxAttempts: 3, initialBackoff: "0.05s", maxBackoff: "0.5s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] } }]
      : [],
  };
  return { "grpc.service_config": JSON.stringify(config) };
}

/** SayHello through a ts-proto client; resolves with the answering instance. */
function sayHello(client: GreeterClient, metadata = new grpc.Metadata()): Promise<string> {
  return new Promise((resolve, reject) =>
    client.sayHello({ name: "plain" }, metadata, { deadline: Date.now() + 5000 }, (err, reply) => (err ? reject(err) : resolve(reply!.servedBy))),
  );
}

function keyed(key: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-user", key);
  return md;
}

describe("mesh: a plain grpc-js client on etcd:///", function () {
  this.timeout(150_000);
  const namespace = uniqueNamespace();
  const live = new Map<string, GreeterProcess>();
  const clients: grpc.Client[] = [];
  let registry: EtcdRegistry;
  let sets: Recorder<SetChange>;

  // Defined before the etcd fixture's own `after`, so instances deregister while etcd still runs.
  after(async function () {
    this.timeout(20_000);
    setDefaultDiscovery(undefined);
    for (const c of clients.splice(0)) c.close();
    await Promise.all([...live.values()].map((p) => p.stop()));
    await registry?.close();
  });
  const fixture = useEmbeddedEtcd();

  const start = async (id: string) => {
    const p = await startGreeterProcess({ etcdEndpoints: fixture.endpoints, ttlSeconds: TTL_SECONDS, namespace, id, delayMs: DELAY_MS, graceMs: 2000 });
    live.set(id, p);
    return p;
  };
  const client = (options: grpc.ChannelOptions) => {
    const c = new GreeterClient("etcd:///greeter", grpc.credentials.createInsecure(), options);
    clients.push(c);
    return c;
  };
  const clientSees = (ids: string[], timeoutMs = 10_000): Promise<SetChange> => {
    const want = JSON.stringify([...ids].sort());
    return waitFor(() => (JSON.stringify(sets.last?.ids) === want ? sets.last : undefined), { timeoutMs, what: `client set ${want}` });
  };
  /** Which instance id a ring of the registered addresses names for each key. */
  const ringOwners = async (ks: string[]) => {
    const instances = await registry.list("greeter");
    const ring = new HashRing(instances.map((i) => ({ key: i.address, weight: i.weight })));
    const idAt = new Map(instances.map((i) => [i.address, i.id]));
    return new Map(ks.map((k) => [k, idAt.get(ring.owner(k)!.key)!]));
  };

  before(async function () {
    this.timeout(150_000);
    registry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: TTL_SECONDS });
    const tap = tapDiscovery(registry);
    sets = tap.sets;
    setDefaultDiscovery(tap.discovery);
    await Promise.all(["p1", "p2", "p3"].map(start));
  });

  it("balances by key with consistent_hash from its own service config: one key stays put, keyless calls spread", async () => {
    const hashing = client(serviceConfig({ consistent_hash: { header: "x-user" } }));
    await sayHello(hashing);
    await clientSees(["p1", "p2", "p3"]);
    const served: string[] = [];
    for (let batch = 0; batch < 10; batch++) served.push(...(await Promise.all(Array.from({ length: 100 }, () => sayHello(hashing, keyed("user-42"))))));
    expect(new Set(served).size, "1,000 calls of one key").to.equal(1);

    const ks = keys(1000);
    const owners = await ownersOf(ks, (k) => sayHello(hashing, keyed(k)));
    const expected = await ringOwners(ks);
    for (const k of ks) expect(owners.get(k), k).to.equal(expected.get(k));

    const keyless = await Promise.all(Array.from({ length: 60 }, () => sayHello(hashing)));
    expect([...tally(keyless).keys()].sort()).to.deep.equal(["p1", "p2", "p3"]);
  });

  it("round-robins ts-proto calls over the registry: a newcomer gets calls and keys, a graceful leaver fails none", async () => {
    const roundRobin = client(serviceConfig({ round_robin: {} }));
    const hashing = client(serviceConfig({ consistent_hash: { header: "x-user" } }));
    const ks = keys(2000, "move");
    const before = await ownersOf(ks, (k) => sayHello(hashing, keyed(k)));
    const load = steadyLoad(() => sayHello(roundRobin), { concurrency: 9 });
    await moreCalls(load, 30);

    await start("p4");
    await waitFor(() => load.records.some((r) => r.servedBy === "p4"), { what: "a call served by p4" });
    const after = await ownersOf(ks, (k) => sayHello(hashing, keyed(k)));
    const moved = ks.filter((k) => after.get(k) !== before.get(k));
    for (const k of moved) expect(after.get(k), k).to.equal("p4");

    const stopAt = Date.now();
    const stopping = live.get("p1")!.stop();
    const removed = await clientSees(["p2", "p3", "p4"]);
    await stopping;
    live.delete("p1");
    await moreCalls(load, 30);
    await load.stop();
    console.log(`      plain client: newcomer took ${moved.length}/${ks.length} keys (1/N of them = ${ks.length / 4}); graceful leave seen in ${removed.at - stopAt} ms; ${load.records.length} calls, ${load.failures.length} failed`);
    expect(moved.length / ks.length).to.be.within(0.5 / 4, 1.5 / 4);
    expect(load.failures, JSON.stringify(load.failures.slice(0, 3))).to.have.length(0);
    expect(load.records.filter((r) => r.servedBy === "p1" && r.startedAt > removed.at)).to.have.length(0);
  });

  it("loses no call to a SIGKILLed instance with a retry policy in its service config, and drops it within TTL + 1 s", async () => {
    const retrying = client(serviceConfig({ round_robin: {} }, true));
    const load = steadyLoad(() => sayHello(retrying), { concurrency: 9 });
    await moreCalls(load, 60);
    const killAt = Date.now();
    live.get("p2")!.kill("SIGKILL");
    const removed = await clientSees(["p3", "p4"], (TTL_SECONDS + 3) * 1000);
    live.delete("p2");
    await moreCalls(load, 60);
    await load.stop();
    console.log(`      plain client: SIGKILL → removed in ${removed.at - killAt} ms; ${load.records.length} calls, ${load.failures.length} failed`);
    expect(removed.at - killAt).to.be.below(TTL_SECONDS * 1000 + 1000);
    expect(load.failures, JSON.stringify(load.failures.slice(0, 3))).to.have.length(0);
  });
});
