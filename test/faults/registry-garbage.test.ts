import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { etcdRegistry, type EtcdRegistry, type Server } from "protomesh";
import { captureLogger } from "../helpers/capture-logger";
import { uniqueNamespace, useEmbeddedEtcd } from "../helpers/etcd";
import { startGreeter } from "../helpers/greeter";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, type Fleet } from "./helpers/fleet";
import { mb, settledHeap } from "./helpers/heap";

const TTL = 3;
const JUNK_KEYS = 10_000;

describe("bad input: garbage under the registry prefix", function () {
  this.timeout(120_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  const servers: Server[] = [];
  const registries: EtcdRegistry[] = [];
  before(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 100 })));
    await Promise.all(registries.map((r) => r.close()));
    await fleet.close();
  });

  /** An in-process greeter registered as `id` in the fleet's namespace. */
  async function instance(id: string): Promise<void> {
    const registry = etcdRegistry({ endpoints: fixture.endpoints, namespace: fleet.namespace, ttlSeconds: TTL, logger: captureLogger() });
    registries.push(registry);
    const { server } = await startGreeter(
      { sayHello: async (req) => ({ message: `Hello, ${req.name}!`, servedBy: id }) },
      { name: "greeter", registry, instance: { id }, logger: captureLogger() },
    );
    servers.push(server);
  }

  it("skips every bad entry with a bounded number of warnings, keeps calling, and keeps memory bounded", async () => {
    await instance("a");
    await instance("b");
    const { registry, logger } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.join() === "a,b", 10_000, "holds a and b");
    // The deadline only bounds a hang: what this spec checks is that garbage never fails a call,
    // and a loaded machine writing 10,000 keys in this same process can stall a call for seconds.
    const load = startCallLoad(fleet.client(registry), { deadlineMs: 15_000 });
    await waitFor(() => load.servedSince(0).size === 2, { timeoutMs: 10_000, what: "calls on both instances" });
    const heapBefore = await settledHeap();

    const raw = fixture.rawEtcd();
    const prefix = `/protomesh/${fleet.namespace}/services/greeter/`;
    const valid = (id: string) => ({ id, service: "greeter", address: "127.0.0.1:1", startedAt: Date.now() });
    const garbage: Array<[Buffer | string, Buffer | string]> = [
      [`${prefix}bad-json`, "{not json"],
      [`${prefix}empty`, ""],
      [`${prefix}binary`, randomBytes(64)],
      [`${prefix}array`, "[1,2,3]"],
      [`${prefix}null`, "null"],
      [`${prefix}wrong-types`, JSON.stringify({ id: "wrong-types", service: "greeter", address: 8080, weight: "heavy", startedAt: "yesterday" })],
      [`${prefix}wrong-id`, JSON.stringify(valid("someone-else"))],
      [`${prefix}wrong-service`, JSON.stringify({ ...valid("wrong-service"), service: "billing" })],
      [`${prefix}bad-address`, JSON.stringify({ ...valid("bad-address"), address: "http://example.com/x" })],
      [`${prefix}proto`, `{"__proto__":{"address":"127.0.0.1:2"},"id":"proto","service":"greeter","startedAt":1}`],
      [`${prefix}nested/deeper`, JSON.stringify(valid("nested"))],
      [Buffer.concat([Buffer.from(prefix), Buffer.from([0xff, 0xfe, 0x00])]), JSON.stringify(valid("x"))],
      [`${prefix}huge`, JSON.stringify({ ...valid("huge"), metadata: { blob: "x".repeat(1 << 20) } })],
    ];
    const writeStart = Date.now();
    for (const [key, value] of garbage) await raw.kv.put({ key: Buffer.from(key), value: Buffer.from(value) });
    const junkKey = (i: number) => Buffer.from(`${prefix}junk-${String(i).padStart(5, "0")}`);
    // Most in transactions of 100 (a watcher gets them in big batches), the last 1,000 one put at a time.
    for (let i = 0; i < JUNK_KEYS - 1000; i += 100) {
      const puts = Array.from({ length: 100 }, (_, j) => ({ request_put: { key: junkKey(i + j), value: Buffer.from(`junk ${i + j}`) } }));
      await raw.kv.txn({ compare: [], success: puts, failure: [] });
    }
    for (let i = JUNK_KEYS - 1000; i < JUNK_KEYS; i++) await raw.kv.put({ key: junkKey(i), value: Buffer.from(`{"id":${i}}`) });
    const writeMs = Date.now() - writeStart;
    // The watch has seen everything once a marker written after the garbage shows up.
    await instance("c");
    await view.until((set) => set.join() === "a,b,c", 20_000, "holds a, b and c despite the garbage");
    await load.reaches("c", 10_000);
    const heapAfterGarbage = await settledHeap();

    // A client arriving now lists all of it at once.
    const fresh = fleet.registry();
    const listStart = Date.now();
    const listed = (await fresh.registry.list("greeter")).map((i) => i.id).sort();
    const listMs = Date.now() - listStart;
    expect(listed).to.deep.equal(["a", "b", "c"]);
    const freshView = fleet.follow(fresh.registry);
    await freshView.until((set) => set.join() === "a,b,c", 20_000, "of a newcomer holds a, b and c");

    // Clearing the garbage gives the memory back.
    await raw.delete().prefix(`${prefix}junk-`).exec();
    for (const [key] of garbage) await raw.kv.deleteRange({ key: Buffer.from(key) });
    await view.until((set) => set.join() === "a,b,c", 5000, "holds a, b and c after the cleanup");
    await new Promise((r) => setTimeout(r, 500));
    const heapAfterCleanup = await settledHeap();
    const summary = await load.stop();

    const warnings = [...logger.entries.values, ...fresh.logger.entries.values].filter((e) => e.level === "warn");
    const skipped = warnings.filter((e) => e.msg.includes("invalid registry entr"));
    printFigures("registry garbage", summary, {
      "garbage keys": garbage.length + JUNK_KEYS,
      "written in (ms)": writeMs,
      "newcomer lists in (ms)": listMs,
      "warning lines": warnings.length,
      heap: `${mb(heapBefore)} → ${mb(heapAfterGarbage)} with garbage → ${mb(heapAfterCleanup)} after cleanup`,
    });

    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
    expect(view.ids()).to.deep.equal(["a", "b", "c"]);
    expect(skipped.length, "bad entries are reported").to.be.greaterThan(0);
    expect(skipped.some((e) => e.msg.includes("more invalid registry entries")), "a burst is summarised").to.equal(true);
    expect(warnings.length, "warnings stay a handful, not one per key").to.be.below(100);
    const reasons = skipped.map((e) => String(e.fields.reason ?? ""));
    expect(reasons.join("\n")).to.match(/not JSON|not a JSON object|does not match the key|over the 4096-byte limit|not host:port/);
    expect(heapAfterGarbage - heapBefore, "heap growth with 10,000 junk keys").to.be.below(64 * 1024 * 1024);
    expect(heapAfterCleanup - heapBefore, "heap growth after cleanup").to.be.below(16 * 1024 * 1024);
  });

  it("ignores garbage outside the service's own prefix", async () => {
    const namespace = fleet.namespace;
    const raw = fixture.rawEtcd();
    for (const key of [`/protomesh/${namespace}/services/greeter`, `/protomesh/${namespace}/services/greeterx/a`, `/protomesh/${namespace}/junk`, `/protomesh/${uniqueNamespace()}/services/greeter/a`]) {
      await raw.kv.put({ key: Buffer.from(key), value: Buffer.from("{not json") });
    }
    const { registry, logger } = fleet.registry();
    expect((await registry.list("greeter")).map((i) => i.id).sort()).to.deep.equal(["a", "b", "c"]);
    expect(logger.matching("invalid registry entr")).to.deep.equal([]);
  });
});
