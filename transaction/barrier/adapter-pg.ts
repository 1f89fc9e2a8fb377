import type { Pool, PoolClient } from "pg";
import { hearErrors } from "../pg-errors";
import { Barrier, BARRIER_TABLE, checkTableName, type BarrierDriver } from "./barrier";
import { pruneSql } from "./prune";
import { postgresBarrierSchema } from "./schema";

/**
 * A barrier on a `pg` pool. The business code gets the transaction's `PoolClient`: run the
 * business change on it, never on the pool, or the change escapes the barrier's transaction.
 *
 * @example
 *   const barrier = pgBarrier(pool);
 *   await barrier.run(ctx, (db) => db.query("UPDATE account SET balance = balance - $1 WHERE id = $2", [amount, id]));
 */
export function pgBarrier(pool: Pool, options: { table?: string } = {}): Barrier<PoolClient> {
  const table = checkTableName(options.table ?? BARRIER_TABLE);
  // Every connection the pool opens from now on hears its own errors from the start, whoever
  // checks it out (see hearErrors); the pool's own "error" event is unchanged.
  pool.on("connect", hearErrors);
  /** BEGIN (and the statements `first` gives, in the same message), `fn`, COMMIT; ROLLBACK when anything throws. */
  const local = async <T>(first: (conn: PoolClient) => string, fn: (conn: PoolClient, begun: unknown) => Promise<T>): Promise<T> => {
    const conn = await pool.connect();
    let broken = false;
    hearErrors(conn);
    try {
      const begun: unknown = await conn.query(`BEGIN${first(conn)}`);
      const out = await fn(conn, begun);
      await conn.query("COMMIT");
      return out;
    } catch (err) {
      await conn.query("ROLLBACK").catch(() => (broken = true));
      throw err;
    } finally {
      conn.release(broken);
    }
  };
  const driver: BarrierDriver<PoolClient> = {
    transaction: (fn) => local(() => "", (conn) => fn(conn)),
    transactionInserting(rows, fn) {
      // Literals, not parameters: several statements go in one simple-protocol message. Every
      // value is quoted by pg's escapeLiteral; created_at is a number we made.
      const at = Date.now();
      const inserts = (conn: PoolClient) =>
        rows.map((r) => `; INSERT INTO ${table} (mode, gid, branch_id, op, reason, created_at) VALUES (${[r.mode, r.gid, r.branchId, r.op, r.reason].map((v) => conn.escapeLiteral(v)).join(", ")}, ${at}) ON CONFLICT DO NOTHING`).join("");
      return local(inserts, (conn, begun) => {
        // One result per statement: BEGIN's, then each INSERT's.
        const results = begun as Array<{ rowCount: number | null }>;
        return fn(conn, results.slice(1).map((res) => (res.rowCount ?? 0) > 0));
      });
    },
    async insertIfAbsent(tx, r) {
      const res = await tx.query(`INSERT INTO ${table} (mode, gid, branch_id, op, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, [r.mode, r.gid, r.branchId, r.op, r.reason, Date.now()]);
      return (res.rowCount ?? 0) > 0;
    },
    async reasonOf(tx, gid, branchId, op) {
      const res = await tx.query<{ reason: string }>(`SELECT reason FROM ${table} WHERE gid = $1 AND branch_id = $2 AND op = $3`, [gid, branchId, op]);
      return res.rows[0]?.reason;
    },
    async createTable() {
      await pool.query(postgresBarrierSchema(table));
    },
    async deleteClosedBefore(cutoff) {
      return (await pool.query(pruneSql(table, "postgres"), [cutoff])).rowCount ?? 0;
    },
  };
  return new Barrier(driver);
}
