/**
 * Transactions per second of a 2-branch saga and a 2-branch TCC with barrier (each branch one
 * SQL UPDATE on its own bank database), against the same two UPDATEs without a coordinator,
 * in the same run; then the same transactions with the embedded coordinator store (PGlite).
 *
 *   node bin/run.js bench/tx.ts [--seconds 5] [--rounds 3] [--concurrency 16]
 *
 * Everything runs on this machine: a private Postgres (initdb/pg_ctl), a private etcd, the
 * coordinator, both banks and the load in this process. Rounds alternate the variants so
 * background load hits them alike; the report takes each variant's median round.
 */
import { parseArgs } from "node:util";
import { Pool } from "pg";
import { etcdRegistry, setDefaultDiscovery, startEmbeddedEtcd } from "protomesh";
import { createTxClient, createTxServer, embeddedStore, participant, postgresStore, type TxServer } from "protomesh/transaction";
import { AccountDefinition } from "../gen/examples/transfer/v1/transfer_protomesh";
import { startBank } from "../examples/transfer/bank";
import { startPostgres } from "../test/helpers/postgres";

interface Figures {
  tps: number;
  p50: number;
  p99: number;
  failed: number;
}

async function measure(seconds: number, concurrency: number, one: () => Promise<unknown>): Promise<Figures> {
  const lat: number[] = [];
  let failed = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
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
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { tps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), failed };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string" }, rounds: { type: "string" }, concurrency: { type: "string" } } });
  const seconds = Number(values.seconds ?? 5);
  const rounds = Number(values.rounds ?? 3);
  const concurrency = Number(values.concurrency ?? 16);
  const log = (s: string) => process.stderr.write(`[tx bench] ${s}\n`);

  const pg = await startPostgres();
  const etcd = await startEmbeddedEtcd();
  const registry = etcdRegistry({ endpoints: etcd.endpoints, namespace: "txbench" });
  setDefaultDiscovery(registry);
  const pools = [new Pool({ connectionString: await pg.createDatabase("bench_a"), max: 20 }), new Pool({ connectionString: await pg.createDatabase("bench_b"), max: 20 })];
  const storeUrl = await pg.createDatabase("bench_tx");
  const banks = [
    await startBank({ name: "bench-bank-a", database: { pool: pools[0]! }, accounts: { alice: 1e12 }, registry }),
    await startBank({ name: "bench-bank-b", database: { pool: pools[1]! }, accounts: { bob: 0 }, registry }),
  ];
  const a = participant(AccountDefinition, "etcd:///bench-bank-a");
  const b = participant(AccountDefinition, "etcd:///bench-bank-b");
  await a.client().balance({ account: "alice" });
  await b.client().balance({ account: "bob" });

  const coordinators: Record<string, TxServer> = {
    postgres: await createTxServer({ store: await postgresStore({ connectionString: storeUrl, max: 20 }), closeStore: true, server: { name: "bench-tx-pg", registry } }),
    embedded: await createTxServer({ store: await embeddedStore(), closeStore: true, server: { name: "bench-tx-embedded", registry } }),
  };
  for (const c of Object.values(coordinators)) await c.listen();
  const clients = { postgres: createTxClient({ coordinator: "etcd:///bench-tx-pg" }), embedded: createTxClient({ coordinator: "etcd:///bench-tx-embedded" }) };

  const saga = (store: "postgres" | "embedded") => async () => {
    const r = await clients[store].saga().step(a, "debit", "undoDebit", { account: "alice", amount: 1 }).step(b, "credit", "undoCredit", { account: "bob", amount: 1 }).submit({ wait: true });
    if (r.status !== "succeed") throw new Error(r.status);
  };
  const tcc = (store: "postgres" | "embedded") => async () => {
    const r = await clients[store].tcc(async (t) => {
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
    ["saga, Postgres store", saga("postgres")],
    ["TCC with barrier, Postgres store", tcc("postgres")],
    ["saga, embedded store (PGlite)", saga("embedded")],
    ["TCC with barrier, embedded store (PGlite)", tcc("embedded")],
  ];
  for (const [, fn] of variants) await measure(1, 4, fn); // warm up connections and JIT
  const results = new Map<string, Figures[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of variants) {
      const f = await measure(seconds, concurrency, fn);
      results.set(name, [...(results.get(name) ?? []), f]);
      log(`round ${r + 1}/${rounds} ${name}: ${f.tps.toFixed(0)} tx/s, p99 ${f.p99.toFixed(1)} ms${f.failed ? `, ${f.failed} failed` : ""}`);
    }
  }
  const median = (fs: Figures[]) => [...fs].sort((x, y) => x.tps - y.tps)[Math.floor(fs.length / 2)]!;
  const base = median(results.get(variants[0]![0])!).tps;
  const lines = [
    `concurrency ${concurrency}, ${rounds} rounds × ${seconds} s per variant, median round by throughput`,
    "",
    "| variant | tx/s | × baseline | p50 ms | p99 ms | failed |",
    "|---|---:|---:|---:|---:|---:|",
    ...variants.map(([name]) => {
      const m = median(results.get(name)!);
      return `| ${name} | ${m.tps.toFixed(0)} | ${(m.tps / base).toFixed(2)} | ${m.p50.toFixed(1)} | ${m.p99.toFixed(1)} | ${m.failed} |`;
    }),
  ];
  process.stdout.write(lines.join("\n") + "\n");

  for (const c of Object.values(clients)) c.close();
  a.close();
  b.close();
  for (const c of Object.values(coordinators)) await c.shutdown();
  for (const bank of banks) await bank.close();
  for (const p of pools) await p.end();
  await registry.close();
  await etcd.stop();
  await pg.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
