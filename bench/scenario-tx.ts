/**
 * Scenario 9: distributed transactions. Transactions per second of a 2-branch saga and a
 * 2-branch TCC with barrier (each branch one SQL UPDATE on its own bank database) against the
 * same two branches called directly without a coordinator (DTM's "No DTM-2SQL" baseline: the
 * caller calls both services, each runs its UPDATE), and against the two bare UPDATEs from
 * the caller, in the same run; then the same transactions with the embedded coordinator store
 * (PGlite). A private Postgres (initdb/pg_ctl; `durable` keeps fsync on, as deployed) on the
 * run's etcd. Each bank and each coordinator is its own process (`tx-worker.ts`); this process
 * is the caller. Rounds alternate the variants so background load hits them alike; the table
 * takes each variant's median round.
 *
 * Beside throughput it reports the CPU time per transaction of all those processes together
 * (user + system, from `process.cpuUsage`; Postgres and etcd not included), which the machine's
 * load moves far less than wall-clock figures. `--quick` runs only the Postgres variants, once,
 * for a fraction of a second each.
 */
import { Pool } from "pg";
import { createClient, etcdRegistry, setDefaultDiscovery } from "protomesh";
import { createTxClient, participant, type TxClient } from "protomesh/transaction";
import { AccountDefinition } from "../gen/examples/transfer/v1/transfer_protomesh";
import { startPostgres, type PostgresServer } from "../test/helpers/postgres";
import type { BenchContext } from "./context";
import { table, type Section } from "./report";
import { BenchWorker } from "./workers";

export interface TxFigures {
  tps: number;
  p50: number;
  p99: number;
  failed: number;
  /** Process CPU time (user + system) per finished transaction, µs: the caller, banks and coordinators together. */
  cpuUs: number;
  /** The same per process (`caller`, `bank-a`, `bank-b`, `tx-pg`, …), and `postgres` (every Postgres process), µs per transaction. */
  cpuByProcess: Record<string, number>;
}

export interface TxBenchSettings {
  seconds: number;
  rounds: number;
  concurrency: number;
  /** Also measure the embedded (PGlite) coordinator store. */
  embedded: boolean;
  /** Postgres with fsync on (its default) instead of off. */
  durable?: boolean;
  /** Write a CPU profile of each worker process to `<dir>/<worker>.cpuprofile` when it exits. */
  profileDir?: string;
  /** Run the banks and coordinators from bundled JavaScript with plain node instead of through tsx (see `WorkerOptions.compiled`). */
  compiled?: boolean;
  /** Measure only the variants whose name contains one of these (the baseline always runs first). */
  only?: string[];
  /**
   * Also measure a saga whose steps are the baseline's plain UPDATEs (no barrier): what the
   * coordinator alone costs, the most any barrier could leave.
   */
  bound?: boolean;
}

/** The variant the goals are measured against. */
export const BASELINE = "two direct calls, no coordinator";

/** CPU time (µs) per process name at one instant. */
type CpuSample = Record<string, number>;

/**
 * CPU time (user + system, µs) of every process of the Postgres cluster that `pool` talks to:
 * the postmaster and its children (backends, WAL writer, checkpointer…), from /proc. Undefined
 * where /proc is not there.
 */
async function postgresCpu(pool: Pool): Promise<(() => number) | undefined> {
  const { readFileSync, readdirSync } = await import("node:fs");
  const stat = (pid: string) => {
    try {
      // Fields after the command name (which may hold spaces): state ppid … utime(14) stime(15).
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
    } catch {
      return undefined;
    }
  };
  const backend = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const postmaster = stat(String(backend))?.ppid;
  if (!postmaster) return undefined;
  const tickUs = 1e6 / 100; // USER_HZ is 100 on Linux
  return () => {
    let ticks = stat(String(postmaster))?.ticks ?? 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      const s = stat(pid);
      if (s?.ppid === postmaster) ticks += s.ticks;
    }
    return ticks * tickUs;
  };
}

async function measure(seconds: number, concurrency: number, one: () => Promise<unknown>, cpuNow: () => Promise<CpuSample>): Promise<TxFigures> {
  const lat: number[] = [];
  let failed = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  const cpu0 = await cpuNow();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const s = process.hrtime.bigint();
        try {
          await one();
          lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        } catch {
          failed++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = await cpuNow();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  const per = (us: number) => (lat.length > 0 ? us / lat.length : 0);
  const cpuByProcess = Object.fromEntries(Object.keys(cpu1).map((k) => [k, per(cpu1[k]! - (cpu0[k] ?? 0))]));
  const nodeUs = Object.entries(cpuByProcess).reduce((sum, [k, v]) => (k === "postgres" ? sum : sum + v), 0);
  return { tps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), failed, cpuUs: nodeUs, cpuByProcess };
}

/** Runs the variants and returns each one's median round (by throughput), the goals' baseline first. */
export async function runTxBench(settings: TxBenchSettings, etcdEndpoints: string[], namespace: string, log: (line: string) => void): Promise<Array<[string, TxFigures]>> {
  let pg: PostgresServer | undefined;
  const registry = etcdRegistry({ endpoints: etcdEndpoints, namespace });
  setDefaultDiscovery(registry);
  const pools: Pool[] = [];
  const workers: BenchWorker[] = [];
  const clients: TxClient[] = [];
  const closers: Array<{ close(): void }> = [];
  const common = { etcd: etcdEndpoints, namespace };
  try {
    pg = await startPostgres({ durable: settings.durable });
    const urls: Record<string, string> = {};
    for (const name of ["bench_a", "bench_b", "bench_tx"]) urls[name] = await pg.createDatabase(name);
    const start = async (name: string, command: string, args: object) => {
      const w = await BenchWorker.start(name, "tx-worker.ts", { profileDir: settings.profileDir, compiled: settings.compiled });
      workers.push(w);
      await w.call(command, { ...common, ...args });
    };
    await Promise.all([
      start("bank-a", "bank", { name: "bench-bank-a", directName: "bench-direct-a", pgUrl: urls.bench_a, accounts: { alice: 1e12 } }),
      start("bank-b", "bank", { name: "bench-bank-b", directName: "bench-direct-b", pgUrl: urls.bench_b, accounts: { bob: 0 } }),
      start("tx-pg", "coordinator", { name: "bench-tx-pg", storeUrl: urls.bench_tx }),
      ...(settings.embedded ? [start("tx-embedded", "coordinator", { name: "bench-tx-embedded" })] : []),
    ]);
    for (const name of ["bench_a", "bench_b"]) {
      // Only `query` on the pool, so no connection is ever left checked out; an idle one that
      // fails is reported.
      const pool = new Pool({ connectionString: urls[name], max: 20, idleTimeoutMillis: 0 });
      pool.on("error", (err) => log(`idle Postgres connection failed: ${err.message}`));
      pools.push(pool);
    }
    const a = participant(AccountDefinition, "etcd:///bench-bank-a", { discovery: registry });
    const b = participant(AccountDefinition, "etcd:///bench-bank-b", { discovery: registry });
    const directA = createClient(AccountDefinition, "etcd:///bench-direct-a", { discovery: registry });
    const directB = createClient(AccountDefinition, "etcd:///bench-direct-b", { discovery: registry });
    // The same services with debit and credit as plain autocommit UPDATEs (the baseline's), for `bound`.
    const plainA = participant(AccountDefinition, "etcd:///bench-direct-a", { discovery: registry });
    const plainB = participant(AccountDefinition, "etcd:///bench-direct-b", { discovery: registry });
    closers.push(a, b, plainA, plainB, { close: () => directA.$close() }, { close: () => directB.$close() });
    await Promise.all([a.client().balance({ account: "alice" }), b.client().balance({ account: "bob" }), directA.balance({ account: "alice" }), directB.balance({ account: "bob" })]);

    const txClient = (name: string): TxClient => {
      const client = createTxClient({ coordinator: `etcd:///${name}`, client: { discovery: registry } });
      clients.push(client);
      return client;
    };
    const viaPg = txClient("bench-tx-pg");
    const viaEmbedded = settings.embedded ? txClient("bench-tx-embedded") : undefined;

    const saga = (tx: TxClient, first = a, second = b) => async () => {
      const r = await tx.saga().step(first, "debit", "undoDebit", { account: "alice", amount: 1 }).step(second, "credit", "undoCredit", { account: "bob", amount: 1 }).submit({ wait: true });
      if (r.status !== "succeed") throw new Error(r.status);
    };
    const tcc = (tx: TxClient) => async () => {
      const r = await tx.tcc(async (t) => {
        await t.call(a, "debit", { account: "alice", amount: 1 });
        await t.call(b, "credit", { account: "bob", amount: 1 });
      }, { wait: true });
      if (r.outcome.status !== "succeed") throw new Error(r.outcome.status);
    };
    const direct = async () => {
      await directA.debit({ account: "alice", amount: 1 });
      await directB.credit({ account: "bob", amount: 1 });
    };
    const bare = async () => {
      await pools[0]!.query("UPDATE account SET available = available - 1 WHERE id = 'alice' AND available >= 1");
      await pools[1]!.query("UPDATE account SET available = available + 1 WHERE id = 'bob'");
    };
    const variants: Array<[string, () => Promise<void>]> = [
      [BASELINE, direct],
      ["two SQL updates from the caller, no RPC", bare],
      ["saga, Postgres store", saga(viaPg)],
      ["TCC with barrier, Postgres store", tcc(viaPg)],
    ];
    if (settings.bound) variants.push(["saga without barrier (steps are the baseline's UPDATEs), Postgres store", saga(viaPg, plainA, plainB)]);
    if (viaEmbedded) variants.push(["saga, embedded store (PGlite)", saga(viaEmbedded)], ["TCC with barrier, embedded store (PGlite)", tcc(viaEmbedded)]);
    const pgCpu = await postgresCpu(pools[0]!);
    if (settings.only?.length) {
      const keep = variants.filter(([name], i) => i === 0 || settings.only!.some((o) => name.includes(o)));
      variants.splice(0, variants.length, ...keep);
    }
    const cpuNow = async (): Promise<CpuSample> => {
      const own = process.cpuUsage();
      const theirs = await Promise.all(workers.map(async (w) => [w.name, (await w.call<{ us: number }>("cpu")).us] as const));
      return { caller: own.user + own.system, ...Object.fromEntries(theirs), ...(pgCpu ? { postgres: pgCpu() } : {}) };
    };
    for (const [, fn] of variants) await measure(Math.min(1, settings.seconds), 4, fn, cpuNow); // warm up connections and JIT
    const results = new Map<string, TxFigures[]>();
    for (let r = 0; r < settings.rounds; r++) {
      for (const [name, fn] of variants) {
        const f = await measure(settings.seconds, settings.concurrency, fn, cpuNow);
        results.set(name, [...(results.get(name) ?? []), f]);
        const by = Object.entries(f.cpuByProcess).filter(([, us]) => us >= 1).map(([k, us]) => `${k} ${us.toFixed(0)}`).join(", ");
        log(`tx round ${r + 1}/${settings.rounds} ${name}: ${f.tps.toFixed(0)} tx/s, p99 ${f.p99.toFixed(1)} ms, ${f.cpuUs.toFixed(0)} µs CPU/tx (${by})${f.failed ? `, ${f.failed} failed` : ""}`);
      }
    }
    const median = (fs: TxFigures[]) => [...fs].sort((x, y) => x.tps - y.tps)[Math.floor(fs.length / 2)]!;
    return variants.map(([name]) => [name, median(results.get(name)!)]);
  } finally {
    for (const c of clients) c.close();
    for (const c of closers) c.close();
    // Coordinators first: a round still in progress calls the banks, which must still serve it.
    const stop = async (w: BenchWorker) => {
      await w.call("close").catch((err: unknown) => log(`${w.name}: ${String(err)}`));
      await w.stop();
    };
    await Promise.all(workers.filter((w) => w.name.startsWith("tx-")).map(stop));
    await Promise.all(workers.filter((w) => !w.name.startsWith("tx-")).map(stop));
    for (const p of pools) await p.end().catch(() => undefined);
    await registry.close();
    setDefaultDiscovery(undefined);
    await pg?.destroy();
  }
}

export function txTable(rows: Array<[string, TxFigures]>): string {
  const base = rows[0]![1].tps || 1;
  const f1 = (n: number) => n.toFixed(1);
  return table(
    ["variant", "tx/s", "× baseline", "p50 ms", "p99 ms", "CPU µs/tx", "Postgres CPU µs/tx", "failed"],
    rows.map(([name, m]) => [name, m.tps.toFixed(0), (m.tps / base).toFixed(2), f1(m.p50), f1(m.p99), m.cpuUs.toFixed(0), m.cpuByProcess.postgres?.toFixed(0) ?? "–", m.failed]),
  );
}

export async function runTx(ctx: BenchContext): Promise<Section> {
  const settings: TxBenchSettings = ctx.quick ? { seconds: 0.3, rounds: 1, concurrency: 4, embedded: false } : { seconds: 4, rounds: 3, concurrency: 16, embedded: true, durable: true };
  ctx.log(`transactions: ${settings.rounds} round(s) × ${settings.seconds} s per variant, concurrency ${settings.concurrency}`);
  const rows = await runTxBench(settings, ctx.etcdEndpoints, `${ctx.namespace}-tx`, ctx.log);
  const ratio = (name: string) => (rows.find(([n]) => n === name)?.[1].tps ?? 0) / (rows[0]![1].tps || 1);
  return {
    title: "9. Distributed transactions (2-branch saga and TCC on Postgres)",
    body: [
      `A private Postgres (${settings.durable ? "fsync on, its default" : "fsync off"}) and the run's etcd; each bank and each coordinator in its own process, the caller in this one. ${settings.rounds} round(s) × ${settings.seconds} s per variant at concurrency ${settings.concurrency}, median round by throughput. The goals' baseline is "${BASELINE}" (DTM's "No DTM-2SQL"). CPU µs/tx is the user + system time of the caller, banks and coordinators together per finished transaction (not Postgres or etcd).`,
      txTable(rows),
    ],
    goals: [
      { goal: "saga ≥ 0.6× the two branches called without a coordinator", measured: `${ratio("saga, Postgres store").toFixed(2)}×`, met: ratio("saga, Postgres store") >= 0.6 },
      { goal: "TCC with barrier ≥ 0.6× the two branches called without a coordinator", measured: `${ratio("TCC with barrier, Postgres store").toFixed(2)}×`, met: ratio("TCC with barrier, Postgres store") >= 0.6 },
    ],
    data: Object.fromEntries(rows),
  };
}
