import type { Database } from "better-sqlite3";
import { Barrier, BARRIER_TABLE, checkTableName, type BarrierDriver } from "./barrier";
import { pruneSql } from "./prune";
import { sqliteBarrierSchema } from "./schema";

/**
 * A barrier on a `better-sqlite3` database (12.x). better-sqlite3 is synchronous and has one
 * connection, so the barrier queues guarded calls of this process one after another (an
 * awaited business function must not interleave with another's statements) and opens each
 * with `BEGIN IMMEDIATE`, which takes SQLite's write lock at once: two processes on one file
 * wait for each other (set `busy_timeout`) instead of failing on lock upgrade.
 */
export function sqliteBarrier(db: Database, options: { table?: string } = {}): Barrier<Database> {
  const table = checkTableName(options.table ?? BARRIER_TABLE);
  let queue: Promise<unknown> = Promise.resolve();
  const insert = () => db.prepare(`INSERT OR IGNORE INTO ${table} (mode, gid, branch_id, op, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)`);
  const driver: BarrierDriver<Database> = {
    transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T> {
      const run = async (): Promise<T> => {
        db.exec("BEGIN IMMEDIATE");
        try {
          const out = await fn(db);
          db.exec("COMMIT");
          return out;
        } catch (err) {
          if (db.inTransaction) db.exec("ROLLBACK");
          throw err;
        }
      };
      const next = queue.then(run, run);
      queue = next.catch(() => undefined);
      return next;
    },
    async insertIfAbsent(tx, r) {
      return insert().run(r.mode, r.gid, r.branchId, r.op, r.reason, Date.now()).changes > 0;
    },
    async reasonOf(tx, gid, branchId, op) {
      const row = tx.prepare(`SELECT reason FROM ${table} WHERE gid = ? AND branch_id = ? AND op = ?`).get(gid, branchId, op) as { reason: string } | undefined;
      return row?.reason;
    },
    async createTable() {
      db.exec(sqliteBarrierSchema(table));
    },
    deleteClosedBefore(cutoff) {
      // Queued like a guarded call, so it never lands inside another call's open transaction.
      return driver.transaction(async () => db.prepare(pruneSql(table, "sqlite")).run(cutoff, cutoff).changes);
    },
  };
  return new Barrier(driver);
}
