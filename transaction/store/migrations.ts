/**
 * The coordinator's schema, as ordered migrations that run on start. Each runs once, in its
 * own transaction, under an advisory lock so instances starting together do not race.
 * Append new steps; never edit a released one.
 */
import type { SqlClient } from "./sql-client";

export const MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE protomesh_tx_global (
  gid          text PRIMARY KEY,
  mode         text NOT NULL,
  status       text NOT NULL,
  settings     text NOT NULL,
  query_target text NOT NULL DEFAULT '',
  traceparent  text NOT NULL DEFAULT '',
  owner        text NOT NULL DEFAULT '',
  next_at      bigint NOT NULL,
  timeout_at   bigint NOT NULL,
  rounds       integer NOT NULL DEFAULT 0,
  last_error   text NOT NULL DEFAULT '',
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL,
  finished_at  bigint NOT NULL DEFAULT 0
);
CREATE INDEX protomesh_tx_global_due ON protomesh_tx_global (next_at) WHERE status IN ('prepared', 'submitted', 'aborting');
CREATE INDEX protomesh_tx_global_created ON protomesh_tx_global (created_at DESC, gid DESC);
CREATE TABLE protomesh_tx_branch (
  gid        text NOT NULL REFERENCES protomesh_tx_global (gid) ON DELETE CASCADE,
  branch_id  text NOT NULL,
  op         text NOT NULL,
  seq        integer NOT NULL,
  target     text NOT NULL,
  method     text NOT NULL,
  payload    bytea NOT NULL,
  after_ids  text NOT NULL DEFAULT '',
  status     text NOT NULL DEFAULT 'prepared',
  attempts   integer NOT NULL DEFAULT 0,
  last_error text NOT NULL DEFAULT '',
  updated_at bigint NOT NULL,
  PRIMARY KEY (gid, branch_id, op)
);
CREATE TABLE protomesh_tx_attempt (
  id        bigserial PRIMARY KEY,
  gid       text NOT NULL REFERENCES protomesh_tx_global (gid) ON DELETE CASCADE,
  branch_id text NOT NULL,
  op        text NOT NULL,
  at        bigint NOT NULL,
  code      integer NOT NULL,
  error     text NOT NULL DEFAULT ''
);
CREATE INDEX protomesh_tx_attempt_gid ON protomesh_tx_attempt (gid, id);
`,
  },
  {
    // A per-transaction branch counter: registering a TCC branch becomes one statement (the
    // counter's UPDATE locks the row and numbers the branches) instead of lock + count + insert.
    version: 2,
    sql: `
ALTER TABLE protomesh_tx_global ADD COLUMN branch_count integer NOT NULL DEFAULT 0;
UPDATE protomesh_tx_global g SET branch_count = (SELECT count(*) FROM protomesh_tx_branch b WHERE b.gid = g.gid)
`,
  },
  {
    // The stuck view (unfinished and old) walks only unfinished rows, newest first, however many
    // finished ones the table holds; the `due` index is ordered by next_at, not by age.
    version: 3,
    sql: `
CREATE INDEX protomesh_tx_global_unfinished_created ON protomesh_tx_global (created_at DESC, gid DESC) WHERE status IN ('prepared', 'submitted', 'aborting');
`,
  },
];

/** An arbitrary constant shared by every instance: the advisory lock that serializes migrations. */
const MIGRATION_LOCK = 0x70_6d_74_78; // "pmtx"

/** Brings the schema up to date; safe to call from many instances at once. */
export async function migrate(db: SqlClient): Promise<number> {
  await db.query(`CREATE TABLE IF NOT EXISTS protomesh_tx_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)`).catch(async (err: unknown) => {
    // Two instances creating the table at once: one loses with a unique violation; the table exists.
    if (!isDuplicate(err)) throw err;
  });
  let applied = 0;
  for (const m of MIGRATIONS) {
    const done = await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock($1)`, [MIGRATION_LOCK]);
      const seen = await tx.query(`SELECT 1 FROM protomesh_tx_schema WHERE version = $1`, [m.version]);
      if (seen.rows.length > 0) return false;
      await runScript(tx, m.sql);
      await tx.query(`INSERT INTO protomesh_tx_schema (version, applied_at) VALUES ($1, $2)`, [m.version, Date.now()]);
      return true;
    });
    if (done) applied++;
  }
  return applied;
}

async function runScript(tx: { query(sql: string): Promise<unknown> }, script: string): Promise<void> {
  // One statement per call: extended-protocol drivers refuse several statements in one query.
  for (const statement of script.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await tx.query(statement);
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "23505" || code === "42P07";
}
