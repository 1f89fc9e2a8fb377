import type { PGlite, Transaction } from "@electric-sql/pglite";
import { Barrier, BARRIER_TABLE, checkTableName, type BarrierDriver } from "./barrier";
import { pruneSql } from "./prune";
import { postgresBarrierSchema } from "./schema";

/**
 * A barrier on a PGlite database (Postgres in WASM). The business code gets PGlite's
 * transaction handle; PGlite runs one transaction at a time, so guarded calls queue.
 */
export function pgliteBarrier(db: PGlite, options: { table?: string } = {}): Barrier<Transaction> {
  const table = checkTableName(options.table ?? BARRIER_TABLE);
  const driver: BarrierDriver<Transaction> = {
    transaction: (fn) => db.transaction(fn),
    async insertIfAbsent(tx, r) {
      const res = await tx.query(`INSERT INTO ${table} (mode, gid, branch_id, op, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, [r.mode, r.gid, r.branchId, r.op, r.reason, Date.now()]);
      return (res.affectedRows ?? 0) > 0;
    },
    async reasonOf(tx, gid, branchId, op) {
      const res = await tx.query<{ reason: string }>(`SELECT reason FROM ${table} WHERE gid = $1 AND branch_id = $2 AND op = $3`, [gid, branchId, op]);
      return res.rows[0]?.reason;
    },
    async createTable() {
      await db.exec(postgresBarrierSchema(table));
    },
    async deleteClosedBefore(cutoff) {
      return (await db.query(pruneSql(table, "postgres"), [cutoff])).affectedRows ?? 0;
    },
  };
  return new Barrier(driver);
}
