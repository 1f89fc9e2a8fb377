import { expect } from "chai";
import type { Etcd3 } from "etcd3";
import type { InstanceInfo } from "../runtime/balancing/instances";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd/registry";
import { captureLogger, type CapturedLogger } from "./helpers/capture-logger";
import { uniqueNamespace, useEmbeddedEtcd, type EtcdFixture } from "./helpers/etcd";
import { Recorder, waitFor } from "./helpers/wait";

type Update = readonly InstanceInfo[];

function instanceValue(service: string, id: string, address: string, extra: Partial<InstanceInfo> = {}): string {
  return JSON.stringify({ id, service, address, version: "1", zone: "z", weight: 1, metadata: {}, startedAt: 1, ...extra });
}

function addresses(instances: Update | undefined): string[] {
  return (instances ?? []).map((i) => i.address);
}

/** What a correct mirror of etcd would hold: the valid entries, sorted by address. */
async function validAddressesInEtcd(raw: Etcd3, registry: EtcdRegistry, service: string): Promise<string[]> {
  const prefix = `/protomesh/${registry.namespace}/services/${service}/`;
  const all = await raw.getAll().prefix(prefix).strings();
  return Object.values(all)
    .map((v) => {
      try {
        return (JSON.parse(v) as { address: string }).address;
      } catch {
        return undefined;
      }
    })
    .filter((a): a is string => typeof a === "string")
    .sort();
}

function setup(fixture: EtcdFixture) {
  const open: EtcdRegistry[] = [];
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const s of stops.splice(0)) s();
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  return {
    registry(options: { endpoints?: string[]; logger?: CapturedLogger; namespace?: string } = {}): EtcdRegistry {
      const r = etcdRegistry({
        endpoints: options.endpoints ?? fixture.endpoints,
        namespace: options.namespace ?? uniqueNamespace(),
        ttlSeconds: 2,
        logger: options.logger ?? captureLogger(),
      });
      open.push(r);
      return r;
    },
    watch(registry: EtcdRegistry, service: string): Recorder<Update> {
      const updates = new Recorder<Update>();
      const w = registry.watch(service, (u) => updates.push(u.instances));
      stops.push(() => w.stop());
      return updates;
    },
  };
}

describe("etcd discovery", function () {
  this.timeout(30_000);
  const fixture = useEmbeddedEtcd();
  const t = setup(fixture);

  it("lists registered instances and watches them come and go", async () => {
    const r = t.registry();
    const a = await r.register({ service: "echo", id: "a", address: "127.0.0.1:1001" });
    expect(addresses(await r.list("echo"))).to.deep.equal(["127.0.0.1:1001"]);
    const updates = t.watch(r, "echo");
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1001"]);
    await r.register({ service: "echo", id: "b", address: "127.0.0.1:1002", weight: 5, zone: "eu" });
    const added = await updates.next();
    expect(addresses(added)).to.deep.equal(["127.0.0.1:1001", "127.0.0.1:1002"]);
    expect(added[1]).to.include({ id: "b", weight: 5, zone: "eu", service: "echo" });
    await a.deregister();
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1002"]);
  });

  it("gives a late subscriber the current set, and an empty set for an unknown service", async () => {
    const r = t.registry();
    await r.register({ service: "echo", address: "127.0.0.1:1001" });
    const first = t.watch(r, "echo");
    await first.next();
    const second = t.watch(r, "echo");
    expect(addresses(await second.next())).to.deep.equal(["127.0.0.1:1001"]);
    const none = t.watch(r, "nobody");
    expect(await none.next()).to.deep.equal([]);
  });

  it("removes an instance whose lease expires (deletes are authoritative)", async () => {
    const r = t.registry();
    const raw = fixture.rawEtcd();
    const updates = t.watch(r, "echo");
    await updates.next();
    const lease = raw.lease(2, { autoKeepAlive: false });
    await lease.put(`/protomesh/${r.namespace}/services/echo/x`).value(instanceValue("echo", "x", "127.0.0.1:1003"));
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1003"]);
    const gone = await updates.next(() => true, { timeoutMs: 5000, what: "expiry" });
    expect(gone).to.deep.equal([]);
    lease.release();
  });

  it("skips garbage entries with a warning and keeps the valid ones", async () => {
    const logger = captureLogger();
    const r = t.registry({ logger });
    const raw = fixture.rawEtcd();
    const prefix = `/protomesh/${r.namespace}/services/echo/`;
    await raw.put(prefix + "good").value(instanceValue("echo", "good", "127.0.0.1:1001"));
    await raw.put(prefix + "json").value("{not json");
    await raw.put(prefix + "types").value(instanceValue("echo", "types", "127.0.0.1:1002", { weight: "heavy" as unknown as number }));
    await raw.put(prefix + "mismatch").value(instanceValue("echo", "other-id", "127.0.0.1:1003"));
    await raw.put(prefix + "noport").value(instanceValue("echo", "noport", "127.0.0.1"));
    await raw.put(prefix + "big").value(JSON.stringify({ pad: "x".repeat(1024 * 1024) }));
    await raw.put(prefix + "nested/deeper").value(instanceValue("echo", "deeper", "127.0.0.1:1004"));

    expect(addresses(await r.list("echo"))).to.deep.equal(["127.0.0.1:1001"]);
    expect(logger.matching("skipping invalid registry entry")).to.have.length(5);
    expect(logger.matching("skipping 1 more invalid")).to.have.length(1);
    const reasons = logger.matching("skipping invalid registry entry").map((e) => String(e.fields.reason));
    expect(reasons.join("|"))
      .to.match(/not JSON/)
      .and.match(/over the 4096-byte limit/)
      .and.match(/does not match the key/)
      .and.match(/valid instance id/)
      .and.match(/host:port/);

    const updates = t.watch(r, "echo");
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1001"]);
    // Same keys, same revisions: no new warnings on the watcher's list.
    expect(logger.matching("skipping invalid registry entry")).to.have.length(5);

    // Garbage arriving through the watch changes nothing; a good entry still gets through.
    await raw.put(prefix + "json2").value("[]");
    await raw.put(prefix + "good2").value(instanceValue("echo", "good2", "127.0.0.1:1005"));
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1001", "127.0.0.1:1005"]);
    expect(updates.values).to.have.length(2);
    expect(logger.matching("skipping invalid registry entry")).to.have.length(6);

    // A valid entry overwritten with garbage no longer describes an instance.
    await raw.put(prefix + "good2").value("garbage");
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1001"]);
  });

  it("survives 10,000 garbage keys: valid ones kept, warnings bounded", async () => {
    const logger = captureLogger();
    const r = t.registry({ logger });
    const raw = fixture.rawEtcd();
    const prefix = `/protomesh/${r.namespace}/services/echo/`;
    await raw.put(prefix + "good").value(instanceValue("echo", "good", "127.0.0.1:1001"));
    const updates = t.watch(r, "echo");
    await updates.next();
    const started = Date.now();
    for (let batch = 0; batch < 100; batch++) {
      const puts = Array.from({ length: 100 }, (_, i) => raw.put(`${prefix}junk-${batch}-${i}`).value(i % 2 ? "{" : '{"id":1}'));
      await raw.if(prefix + "good", "Version", ">", 0).then(...puts).commit();
    }
    const writeMs = Date.now() - started;
    expect(await raw.getAll().prefix(prefix).count()).to.equal(10_001);
    const listStart = Date.now();
    expect(addresses(await r.list("echo"))).to.deep.equal(["127.0.0.1:1001"]);
    const listMs = Date.now() - listStart;
    const fresh = t.watch(r, "echo");
    expect(addresses(await fresh.next(() => true, { timeoutMs: 10_000 }))).to.deep.equal(["127.0.0.1:1001"]);
    console.log(`      wrote 10,000 junk keys in ${writeMs} ms; list took ${listMs} ms`);
    expect(updates.values).to.have.length(1); // the watcher never emitted for garbage
    const lines = logger.entries.values.filter((e) => e.level === "warn").length;
    expect(lines).to.be.below(1000);
    expect(logger.matching("skipping invalid registry entry").length).to.be.at.least(5);
  });

  it("keeps the last-known set while etcd is down, and catches up when it returns", async () => {
    const logger = captureLogger();
    const r = t.registry({ logger });
    const raw = fixture.rawEtcd();
    const prefix = `/protomesh/${r.namespace}/services/echo/`;
    await raw.put(prefix + "a").value(instanceValue("echo", "a", "127.0.0.1:1001"));
    await raw.put(prefix + "b").value(instanceValue("echo", "b", "127.0.0.1:1002"));
    const updates = t.watch(r, "echo");
    expect(addresses(await updates.next((u) => u.length === 2))).to.have.length(2);
    const member = fixture.etcd.members[0];
    await member.kill("SIGKILL");
    await waitFor(() => logger.matching("lost contact with etcd").length > 0, { what: "outage log" });
    let listFailed = false;
    await r.list("echo").catch(() => (listFailed = true));
    expect(listFailed, "list() rejects while etcd is down").to.equal(true);
    await member.start();
    await waitFor(() => logger.matching("etcd reachable again").length > 0, { what: "recovery log" });
    const raw2 = fixture.rawEtcd();
    await raw2.delete().key(prefix + "a");
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1002"]);
    expect(updates.values.every((u) => u.length > 0), "never emptied by the outage").to.equal(true);
    expect(logger.matching("lost contact with etcd")).to.have.length(1);
  });
});

describe("etcd discovery across compaction (3-member cluster)", function () {
  this.timeout(40_000);
  const fixture = useEmbeddedEtcd({ members: 3 });
  const t = setup(fixture);

  it("relists and applies the difference when its watch resumes behind a compaction", async () => {
    const [a, b, c] = fixture.etcd.members;
    const logger = captureLogger();
    // Discovery talks to member a only; the changes go through b and c while a is down.
    const r = t.registry({ endpoints: [a.clientUrl], logger });
    const raw = fixture.rawEtcd([b.clientUrl, c.clientUrl]);
    const prefix = `/protomesh/${r.namespace}/services/echo/`;
    for (const id of ["i1", "i2", "i3"]) await raw.put(prefix + id).value(instanceValue("echo", id, `127.0.0.1:${1000 + Number(id[1])}`));
    const updates = t.watch(r, "echo");
    await updates.next((u) => u.length === 3, { what: "three instances" });

    await a.kill("SIGKILL");
    await waitFor(() => logger.matching("lost contact with etcd").length > 0, { what: "outage log" });
    await raw.delete().key(prefix + "i1");
    await raw.put(prefix + "i2").value(instanceValue("echo", "i2", "127.0.0.1:1002", { weight: 7 }));
    await raw.put(prefix + "i4").value(instanceValue("echo", "i4", "127.0.0.1:1004"));
    for (let i = 0; i < 200; i++) await raw.put(`/unrelated/${i % 10}`).value(String(i));
    const head = await raw.kv.range({ key: Buffer.from("/unrelated/0") });
    await raw.kv.compact({ revision: head.header.revision, physical: true });

    await a.start();
    const expected = await validAddressesInEtcd(raw, r, "echo");
    expect(expected).to.deep.equal(["127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1004"]);
    const synced = await updates.next((u) => JSON.stringify(addresses(u)) === JSON.stringify(expected), {
      timeoutMs: 10_000,
      what: "set equal to etcd's",
    });
    expect(synced.find((i) => i.id === "i2")?.weight).to.equal(7);
    expect(logger.matching("watch fell behind etcd compaction"), "took the compaction path").to.have.length.at.least(1);
    expect(updates.values.every((u) => u.length > 0)).to.equal(true);

    // And the resumed watch is live again.
    await raw.delete().key(prefix + "i3");
    expect(addresses(await updates.next())).to.deep.equal(["127.0.0.1:1002", "127.0.0.1:1004"]);
    await waitFor(async () => (await r.list("echo")).length === 2, { what: "list agrees" });
  });
});
