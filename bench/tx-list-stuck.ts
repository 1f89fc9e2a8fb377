/**
 * The stuck view (`List` with `unfinished` and `older_than_ms`) on a large coordinator table in a
 * real Postgres: a million finished transactions and a backlog of recent unfinished ones, none
 * of them stuck (the answer a healthy system gives, and the slowest to find). Times the store's
 * own statement with `EXPLAIN ANALYZE` (median of 7) with the index of unfinished rows by age,
 * then without it.
 *
 *   node bin/run.js bench/tx-list-stuck.ts [--finished N] [--unfinished N]
 */
import { parseArgs } from "node:util";
import { Pool } from "pg";
import { startPostgres } from "../test/helpers/postgres";
import { postgresStore } from "../transaction";
import { listQuery } from "../transaction/store/sql-store";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { finished: { type: "string" }, unfinished: { type: "string" } } });
  const finished = Number(values.finished ?? 1_000_000);
  const unfinished = Number(values.unfinished ?? 50_000);
  const pg = await startPostgres();
  try {
    const url = await pg.createDatabase("bench_stuck");
    const store = await postgresStore(url); // runs the migrations, index included
    const pool = new Pool({ connectionString: url });
    const now = Date.now();
    const insert = `INSERT INTO protomesh_tx_global (gid, mode, status, settings, next_at, timeout_at, created_at, updated_at) SELECT $2 || i, 'saga', $3, '{}', $1::bigint + i, 0, $1::bigint - i * $4::bigint, 0 FROM generate_series(1, $5::int) AS i`;
    await pool.query(insert, [now, "done-", "succeed", 10, finished]);
    // Recent (all within the last hour at most), so none is older than the hour asked for.
    await pool.query(insert, [now, "open-", "submitted", Math.max(1, Math.floor(3_000_000 / unfinished)), unfinished]);
    await pool.query("VACUUM ANALYZE protomesh_tx_global");
    const q = listQuery({ unfinished: true, createdAtOrBefore: now - 3_600_000, limit: 50 });
    const measure = async (label: string) => {
      const times: number[] = [];
      let index = "";
      for (let i = 0; i < 7; i++) {
        const r = await pool.query<{ "QUERY PLAN": Array<{ "Execution Time": number; Plan: unknown }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${q.sql}`, q.params);
        const plan = r.rows[0]!["QUERY PLAN"][0]!;
        times.push(plan["Execution Time"]);
        index = JSON.stringify(plan.Plan).match(/"Index Name":"(\w+)"/)?.[1] ?? "sequential scan";
      }
      times.sort((a, b) => a - b);
      console.log(`${label.padEnd(34)} median ${times[3]!.toFixed(3)} ms (min ${times[0]!.toFixed(3)}, max ${times[6]!.toFixed(3)})  via ${index}`);
    };
    console.log(`stuck view (unfinished, begun over 1 h ago): ${finished} finished rows, ${unfinished} recent unfinished, none stuck`);
    await measure("with the unfinished-by-age index");
    await pool.query("DROP INDEX protomesh_tx_global_unfinished_created");
    await measure("without it");
    await pool.end();
    await store.close();
  } finally {
    await pg.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
