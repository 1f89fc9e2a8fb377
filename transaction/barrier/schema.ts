/**
 * The barrier table, in the participant's own database (documented in docs/transactions.md).
 * One row per (gid, branch_id, op); `reason` is the op whose call inserted it.
 */

/** Postgres (server or PGlite). */
export function postgresBarrierSchema(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  mode       text   NOT NULL,
  gid        text   NOT NULL,
  branch_id  text   NOT NULL,
  op         text   NOT NULL,
  reason     text   NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (gid, branch_id, op)
)`;
}

/** SQLite. */
export function sqliteBarrierSchema(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  mode       TEXT    NOT NULL,
  gid        TEXT    NOT NULL,
  branch_id  TEXT    NOT NULL,
  op         TEXT    NOT NULL,
  reason     TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (gid, branch_id, op)
)`;
}
