/**
 * Scenario 9: distributed transactions. Transactions per second of a 2-branch saga and a
 * 2-branch TCC with barrier (each branch one SQL UPDATE on its own bank database) against the
 * same two UPDATEs without a coordinator, in the same run; then the same transactions with the
 * embedded coordinator store (PGlite). A private Postgres (initdb/pg_ctl) on the run's etcd; the
 * coordinators, both banks and the load share this process. Rounds alternate the variants so
 * background load hits them alike; the table takes each variant's median round.
 *
 * Beside throughput it reports the process's CPU time per transaction (user + system, from
 * `process.cpuUsage`), which the machine's load moves far less than wall-clock figures.
 * `--quick` runs only the Postgres variants, once, for a fraction of a second each.
 */
import { Pool } from "pg";
import { etcdRegistry, setDefaultDiscovery } from "protomesh";
import { createTxClient, createTxServer, embeddedStore, participant, postgresStore, type TxClient, type TxServer, type TxStore } from "protomesh/transaction";
import { AccountDefinition } from "../gen/examples/transfer/v1/transfer_protomesh";
import { startBank, type Bank } from "../examples/transfer/bank";
import { startPostgres, type PostgresServer } from "../test/helpers/postgres";
import type { BenchContext } from "./context";
import { table, type Section } from "./report";

export interface TxFigures {
  tps: number;
  p50: number;
  p99: number;
  failed: number;
  /** Process CPU time (user + system) per finished transaction, µs. */
  cpuUs: number;
}

export interface TxBenchSettings {
  seconds: number;
  rounds: number;
  concurrency: number;
  /** Also measure the embedded (PGlite) coordinator store. */
  embedded: boolean;
}

async function measure(seconds: number, concurrency: number, one: () => Promise<unknown>): Promise<TxFigures> {
  const lat: number[] = [];
  let failed = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpu0);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { tps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), failed, cpuUs: lat.length > 0 ? (cpu.user + cpu.system) / lat.length : 0 };
}

/** Runs the variants and returns each one's median round (by throughput), baseline first. */
export async function runTxBench(settings: TxBenchSettings, etcdEndpoints: string[], namespace: string, log: (line: string) => void): Promise<Array<[string, TxFigures]>> {
  let pg: PostgresServer | undefined;
  const registry = etcdRegistry({ endpoints: etcdEndpoints, namespace });
  setDefaultDiscovery(registry);
  const pools: Pool[] = [];
  const banks: Bank[] = [];
  const coordinators: TxServer[] = [];
  const clients: TxClient[] = [];
  const parts: Array<{ close(): void }> = [];
  try {
    pg = await startPostgres();
    for (const name of ["bench_a", "bench_b"]) {
      const pool = new Pool({ connectionString: await pg.createDatabase(name), max: 20 });
      // A client still checked out when Postgres stops at the end emits `error`; pg gives a
      // checked-out client no listener, and an unheard `error` ends the process.
      pool.on("error", () => undefined);
      pool.on("connect", (client) => client.on("error", () => undefined));
      pools.push(pool);
    }
    const storeUrl = await pg.createDatabase("bench_tx");
    banks.push(await startBank({ name: "bench-bank-a", database: { pool: pools[0]! }, accounts: { alice: 1e12 }, registry }));
    banks.push(await startBank({ name: "bench-bank-b", database: { pool: pools[1]! }, accounts: { bob: 0 }, registry }));
    const a = participant(AccountDefinition, "etcd:///bench-bank-a", { discovery: registry });
    const b = participant(AccountDefinition, "etcd:///bench-bank-b", { discovery: registry });
    parts.push(a, b);
    await a.client().balance({ account: "alice" });
    await b.client().balance({ account: "bob" });

    const start = async (name: string, store: TxStore): Promise<TxClient> => {
      const c = await createTxServer({ store, closeStore: true, discovery: registry, server: { name, registry } });
      coordinators.push(c);
      await c.listen("127.0.0.1:0");
      const client = createTxClient({ coordinator: `etcd:///${name}`, client: { discovery: registry } });
      clients.push(client);
      return client;
    };
    const viaPg = await start("bench-tx-pg", await postgresStore({ connectionString: storeUrl, max: 20 }));
    const viaEmbedded = settings.embedded ? await start("bench-tx-embedded", await embeddedStore()) : undefined;

    const saga = (tx: TxClient) => async () => {
      const r = await tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 1 }).step(b, "credit", "undoCredit", { account: "bob", amount: 1 }).submit({ wait: true });
      if (r.status !== "succeed") throw new Error(r.status);
    };
    const tcc = (tx: TxClient) => async () => {
      const r = await tx.tcc(async (t) => {
        await t.call(a, "debit", { account: "alice", amount: 1 });
        await t.call(b, "credit", { account: "bob", amount: 1 });
      }, { wait: true });
      if (r.outcome.status !== "succeed") throw new Error(r.outcome.status);
    };
    const baseline = async () => {
      await pools[0]!.query("UPDATE account SET available = available - 1 WHERE id = 'alice' AND available >= 1");
      await pools[1]!.query("UPDATE account SET available = available + 1 WHERE id = 'bob'");
    };
    const variants: Array<[string, () => Promise<void>]> = [
      ["two SQL updates, no coordinator", baseline],
      ["saga, Postgres store", saga(viaPg)],
      ["TCC with barrier, Postgres store", tcc(viaPg)],
    ];
    if (viaEmbedded) variants.push(["saga, embedded store (PGlite)", saga(viaEmbedded)], ["TCC with barrier, embedded store (PGlite)", tcc(viaEmbedded)]);
    for (const [, fn] of variants) await measure(Math.min(1, settings.seconds), 4, fn); // warm up connections and JIT
    const results = new Map<string, TxFigures[]>();
    for (let r = 0; r < settings.rounds; r++) {
      for (const [name, fn] of variants) {
        const f = await measure(settings.seconds, settings.concurrency, fn);
        results.set(name, [...(results.get(name) ?? []), f]);
        log(`tx round ${r + 1}/${settings.rounds} ${name}: ${f.tps.toFixed(0)} tx/s, p99 ${f.p99.toFixed(1)} ms, ${f.cpuUs.toFixed(0)} µs CPU/tx${f.failed ? `, ${f.failed} failed` : ""}`);
      }
    }
    const median = (fs: TxFigures[]) => [...fs].sort((x, y) => x.tps - y.tps)[Math.floor(fs.length / 2)]!;
    return variants.map(([name]) => [name, median(results.get(name)!)]);
  } finally {
    for (const c of clients) c.close();
    for (const p of parts) p.close();
    for (const c of coordinators) await c.shutdown().catch(() => undefined);
    for (const bank of banks) await bank.close().catch(() => undefined);
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
    ["variant", "tx/s", "× baseline", "p50 ms", "p99 ms", "CPU µs/tx", "failed"],
    rows.map(([name, m]) => [name, m.tps.toFixed(0), (m.tps / base).toFixed(2), f1(m.p50), f1(m.p99), m.cpuUs.toFixed(0), m.failed]),
  );
}

export async function runTx(ctx: BenchContext): Promise<Section> {
  const settings: TxBenchSettings = ctx.quick ? { seconds: 0.3, rounds: 1, concurrency: 4, embedded: false } : { seconds: 4, rounds: 3, concurrency: 16, embedded: true };
  ctx.log(`transactions: ${settings.rounds} round(s) × ${settings.seconds} s per variant, concurrency ${settings.concurrency}`);
  const rows = await runTxBench(settings, ctx.etcdEndpoints, `${ctx.namespace}-tx`, ctx.log);
  const ratio = (name: string) => (rows.find(([n]) => n === name)?.[1].tps ?? 0) / (rows[0]![1].tps || 1);
  return {
    title: "9. Distributed transactions (2-branch saga and TCC on Postgres)",
    body: [
      `A private Postgres and the run's etcd; coordinators, both banks and the load in one process. ${settings.rounds} round(s) × ${settings.seconds} s per variant at concurrency ${settings.concurrency}, median round by throughput. CPU µs/tx is this process's user + system time per finished transaction.`,
      txTable(rows),
    ],
    goals: [
      { goal: "saga ≥ 0.6× the two updates without a coordinator", measured: `${ratio("saga, Postgres store").toFixed(2)}×`, met: ratio("saga, Postgres store") >= 0.6 },
      { goal: "TCC with barrier ≥ 0.6× the two updates without a coordinator", measured: `${ratio("TCC with barrier, Postgres store").toFixed(2)}×`, met: ratio("TCC with barrier, Postgres store") >= 0.6 },
    ],
    data: Object.fromEntries(rows),
  };
}
