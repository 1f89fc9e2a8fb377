/**
 * The frozen-instance experiment as a bench scenario (the automated form of
 * test/traffic-freeze.test.ts, with figures instead of bounds): 3 greeter processes registered
 * in a real etcd (lease TTL `--ttl-seconds` 10 s, longer than the freeze, so the registry keeps listing
 * the frozen one), `--callers` 12 closed-loop callers (2 ms pause, deadline `--deadline-ms`)
 * through `etcd:///greeter`; one instance is SIGSTOPped for `--freeze-seconds` 5, then SIGCONTed.
 * Per balancer (`--balancers`, default p2c then round_robin for contrast; the same three
 * processes, a new client each):
 *
 * - failed calls, against the calls in flight at the freeze (all of them, counted afterwards
 *   from the records: started before it, ended after it), and failed calls started later than
 *   1 s after the freeze;
 * - successful calls per 100 ms bucket, from 1 s before the freeze to 2 s after SIGCONT;
 * - seconds from the freeze until throughput is back to ≥ 80 % of the 2 s before it (the first
 *   bucket from which the next 500 ms average that much);
 * - milliseconds from SIGCONT until a call started after it is answered by the frozen instance.
 */
import { createClient, etcdRegistry, startEmbeddedEtcd, type BalancerOption } from "../index";
import { GreeterDefinition, type GreeterClient } from "../gen/examples/greeter/v1/greeter_protomesh";
import type { StartBackendsArgs } from "./traffic-backends";
import { BenchWorker, stopAllWorkers } from "./workers";

export interface FreezeOptions {
  freezeSeconds: number;
  callers: number;
  deadlineMs: number;
  ttlSeconds: number;
  balancers: string[];
}

export const FREEZE_DEFAULTS: FreezeOptions = { freezeSeconds: 5, callers: 12, deadlineMs: 2000, ttlSeconds: 10, balancers: ["p2c", "round_robin"] };

const BUCKET_MS = 100;
const BEFORE_MS = 2000;
const AFTER_MS = 2000;
const PAUSE_MS = 2;
const FROZEN = "b";

interface CallRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  servedBy?: string;
}

export async function freezeScenario(o: FreezeOptions): Promise<void> {
  if (o.freezeSeconds >= o.ttlSeconds) throw new RangeError(`--freeze-seconds (${o.freezeSeconds}) must be below --ttl-seconds (${o.ttlSeconds}): the registry must keep listing the frozen instance`);
  const etcd = await startEmbeddedEtcd({});
  const namespace = `bench-freeze-${process.pid}`;
  const workers = new Map<string, BenchWorker>();
  try {
    for (const id of ["a", FROZEN, "c"]) {
      const worker = await BenchWorker.start(`greeter-${id}`, "traffic-backends.ts");
      const args: StartBackendsArgs = { etcdEndpoints: etcd.endpoints, namespace, ids: [id], medianMs: 0, sigma: 0, ttlSeconds: o.ttlSeconds };
      await worker.call("start", args);
      workers.set(id, worker);
    }
    console.log(`freeze: 3 greeter processes (lease TTL ${o.ttlSeconds} s), ${o.callers} callers (${PAUSE_MS} ms pause, deadline ${o.deadlineMs} ms); "${FROZEN}" SIGSTOPped for ${o.freezeSeconds} s`);
    for (const name of o.balancers) {
      const discovery = etcdRegistry({ endpoints: etcd.endpoints, namespace, ttlSeconds: o.ttlSeconds });
      const client = createClient(GreeterDefinition, "etcd:///greeter", { discovery, balancer: name as BalancerOption });
      try {
        await run(name, client, workers.get(FROZEN)!.pid, o);
      } finally {
        client.$close();
        await discovery.close();
      }
    }
    for (const w of workers.values()) await w.call("stop");
  } finally {
    for (const w of workers.values()) signal(w.pid, "SIGCONT");
    await stopAllWorkers();
    await etcd.stop();
  }
}

async function run(name: string, client: GreeterClient, frozenPid: number, o: FreezeOptions): Promise<void> {
  const records: CallRecord[] = [];
  let running = true;
  const callers = Array.from({ length: o.callers }, async () => {
    while (running) {
      const r: CallRecord = { startedAt: performance.now(), endedAt: 0, ok: false };
      try {
        r.servedBy = (await client.sayHello({ name: "f" }, { deadlineMs: o.deadlineMs })).servedBy;
        r.ok = true;
      } catch {
        // counted as a failure below
      }
      r.endedAt = performance.now();
      records.push(r);
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    }
  });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const waitUntil = async (check: () => boolean, timeoutMs: number, what: string) => {
    const until = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > until) throw new Error(`${name}: ${what} not seen within ${timeoutMs} ms`);
      await sleep(20);
    }
  };
  try {
    const warmFrom = performance.now();
    await waitUntil(() => new Set(records.filter((r) => r.ok && r.startedAt >= warmFrom).map((r) => r.servedBy)).size === 3, 60_000, "calls on all three instances");
    await sleep(BEFORE_MS + 1000);
    const frozenAt = performance.now();
    process.kill(frozenPid, "SIGSTOP");
    await sleep(o.freezeSeconds * 1000);
    const resumedAt = performance.now();
    process.kill(frozenPid, "SIGCONT");
    let back = Number.NaN;
    try {
      await waitUntil(() => records.some((r) => r.ok && r.servedBy === FROZEN && r.startedAt >= resumedAt), 30_000, `a call answered by "${FROZEN}" after SIGCONT`);
      back = Math.min(...records.filter((r) => r.ok && r.servedBy === FROZEN && r.startedAt >= resumedAt).map((r) => r.endedAt)) - resumedAt;
    } catch (err) {
      console.log(`  ${(err as Error).message}`);
    }
    await sleep(AFTER_MS);
    running = false;
    await Promise.all(callers);
    summarize(name, records, frozenAt, resumedAt, back);
  } finally {
    running = false;
    signal(frozenPid, "SIGCONT");
  }
}

/** Sends `sig` to `pid`; a process already gone is not an error here. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

function summarize(name: string, records: CallRecord[], frozenAt: number, resumedAt: number, backMs: number): void {
  const inFlight = records.filter((r) => r.startedAt <= frozenAt && r.endedAt > frozenAt).length;
  const failed = records.filter((r) => !r.ok);
  const lateFailures = failed.filter((r) => r.startedAt > frozenAt + 1000).length;
  const bucketOf = (t: number) => Math.floor((t - frozenAt) / BUCKET_MS);
  const counts = new Map<number, number>();
  for (const r of records) if (r.ok) counts.set(bucketOf(r.endedAt), (counts.get(bucketOf(r.endedAt)) ?? 0) + 1);
  const at = (b: number) => counts.get(b) ?? 0;
  const beforeBuckets = BEFORE_MS / BUCKET_MS;
  let before = 0;
  for (let b = -beforeBuckets; b < 0; b++) before += at(b);
  before /= beforeBuckets;
  const lastBucket = bucketOf(resumedAt + AFTER_MS);
  let recovered = Number.NaN;
  for (let b = 0; b + 5 <= lastBucket; b++) {
    let sum = 0;
    for (let k = b; k < b + 5; k++) sum += at(k);
    if (sum / 5 >= 0.8 * before) {
      recovered = (b * BUCKET_MS) / 1000;
      break;
    }
  }
  console.log(
    `  ${name}: ${records.length} calls, ${failed.length} failed (${inFlight} in flight at the freeze; ${lateFailures} failed calls started > 1 s after it); ` +
      `throughput back to ≥ 80 % of before (${((before * 1000) / BUCKET_MS).toFixed(0)}/s) ${Number.isNaN(recovered) ? "not within the run" : `${recovered.toFixed(1)} s`} after the freeze; ` +
      `"${FROZEN}" answered again ${Number.isNaN(backMs) ? "never in the run" : `${backMs.toFixed(0)} ms`} after SIGCONT`,
  );
  if (failed.length > 0) {
    // When the failed calls started, relative to the freeze (s, one decimal), with counts: which calls the freeze cost.
    const starts = new Map<string, number>();
    for (const r of failed) {
      const t = ((r.startedAt - frozenAt) / 1000).toFixed(1);
      const key = t === "-0.0" ? "0.0" : t;
      starts.set(key, (starts.get(key) ?? 0) + 1);
    }
    console.log(`    failed calls started at (s from the freeze): ${[...starts].map(([t, n]) => (n > 1 ? `${t} ×${n}` : t)).join(", ")}`);
  }
  console.log(`    successful calls per ${BUCKET_MS} ms, one row per second (t = 0: the freeze; SIGCONT at ${((resumedAt - frozenAt) / 1000).toFixed(1)} s):`);
  for (let s = -1; s * 10 < lastBucket; s++) {
    const row = Array.from({ length: 10 }, (_, k) => String(at(s * 10 + k)).padStart(4)).join("");
    console.log(`    ${`${s >= 0 ? "+" : ""}${s} s`.padStart(6)} ${row}`);
  }
}
