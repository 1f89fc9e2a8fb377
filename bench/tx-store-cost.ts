/**
 * CPU the coordinator's Postgres store costs per saga: the two statements of a 2-branch saga
 * (the create with its four branch rows, and the final move recording both actions), run one
 * after another on a private Postgres, measured as CPU time of this process (user + system)
 * and of every Postgres process (the postmaster and its children: backends, WAL writer…, from
 * /proc), per saga. With `--concurrency 1` (the default) no statement is shared between
 * transactions: that is the per-statement cost; with more, that many sagas run at once on a
 * pool of as many connections, and the store may carry several in one statement.
 *
 *   node bin/run.js bench/tx-store-cost.ts [--durable] [--sagas 2000] [--rounds 5] [--concurrency 1]
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Pool } from "pg";
import { startPostgres } from "../test/helpers/postgres";
import { openSqlStore } from "../transaction/store/sql-store";
import { pgClient } from "../transaction/store/sql-client";
import { DEFAULT_SETTINGS } from "../transaction/coordinator/settings";
import type { NewBranch } from "../transaction/store/types";

/** Parent and CPU time (µs) of a process so far, from /proc (USER_HZ 100). */
function statOf(pid: number | string): { ppid: number; us: number } | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { ppid: Number(f[1]), us: (Number(f[11]) + Number(f[12])) * 1e4 };
  } catch {
    return undefined;
  }
}

/** CPU time (µs) of `postmaster` and all its children. */
function clusterCpu(postmaster: number): number {
  let us = statOf(postmaster)?.us ?? 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const s = statOf(pid);
    if (s?.ppid === postmaster) us += s.us;
  }
  return us;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { durable: { type: "boolean" }, sagas: { type: "string" }, rounds: { type: "string" }, concurrency: { type: "string" } } });
  const n = Number(values.sagas ?? 2000);
  const rounds = Number(values.rounds ?? 5);
  const concurrency = Number(values.concurrency ?? 1);
  const pg = await startPostgres({ durable: values.durable });
  try {
    const pool = new Pool({ connectionString: await pg.createDatabase("store_cost"), max: concurrency });
    pool.on("error", () => undefined); // idle connections end with the cluster
    const store = await openSqlStore(pgClient(pool));
    const backend = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const postmaster = statOf(backend)!.ppid;
    /** `count` sagas, `concurrency` at a time. */
    const run = async (count: number) => {
      let left = count;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (left-- > 0) await saga();
      }));
    };
    const payload = new Uint8Array(20);
    const branch = (id: string, op: NewBranch["op"]): NewBranch => ({ branchId: id, op, target: "etcd:///bank", method: "/examples.transfer.v1.Account/Debit", payload, after: [] });
    let k = 0;
    const saga = async () => {
      const now = Date.now();
      const gid = `s${k++}-${process.pid}`;
      await store.create({ gid, mode: "saga", status: "submitted", settings: DEFAULT_SETTINGS, queryTarget: "", traceparent: "", owner: "bench", nextAt: now + 13_000, timeoutAt: now + 35_000, rounds: 1 }, [branch("01", "action"), branch("01", "compensate"), branch("02", "action"), branch("02", "compensate")]);
      await store.setStatus(gid, ["submitted"], "succeed", Date.now(), { calls: [{ branchId: "01", op: "action", at: now }, { branchId: "02", op: "action", at: now }] });
    };
    const figures: Array<{ node: number; backend: number }> = [];
    for (let r = 0; r < rounds; r++) {
      await run(200); // warm
      const node0 = process.cpuUsage();
      const pg0 = clusterCpu(postmaster);
      await run(n);
      const node1 = process.cpuUsage(node0);
      figures.push({ node: (node1.user + node1.system) / n, backend: (clusterCpu(postmaster) - pg0) / n });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    process.stdout.write(`store statements of one 2-branch saga, ${n} sagas × ${rounds} rounds, ${concurrency} at a time, fsync ${values.durable ? "on" : "off"}:\n`);
    process.stdout.write(`  this process: median ${median(figures.map((f) => f.node)).toFixed(0)} µs CPU per saga (rounds ${figures.map((f) => f.node.toFixed(0)).join(", ")})\n`);
    process.stdout.write(`  Postgres (all its processes): median ${median(figures.map((f) => f.backend)).toFixed(0)} µs CPU per saga (rounds ${figures.map((f) => f.backend.toFixed(0)).join(", ")})\n`);
    await store.close();
    await pool.end();
  } finally {
    await pg.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
