/**
 * The coordinator's store on Postgres SQL, shared by the `pg` and PGlite clients.
 */
import type { SqlClient, SqlQueryable } from "./sql-client";
import { migrate } from "./migrations";
import type { AttemptRow, BranchRow, GlobalRow, ListFilter, NewBranch, NewGlobal, TxStatus, TxStore } from "./types";
import { UNFINISHED } from "./types";

const UNFINISHED_SQL = `status IN (${UNFINISHED.map((s) => `'${s}'`).join(", ")})`;
const GLOBAL_COLUMNS = "gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, last_error, created_at, updated_at, finished_at";

/** Opens the store on `db`, running migrations first. */
export async function openSqlStore(db: SqlClient): Promise<TxStore> {
  await migrate(db);
  return new SqlStore(db);
}

class SqlStore implements TxStore {
  constructor(private readonly db: SqlClient) {}

  async create(g: NewGlobal, branches: readonly NewBranch[]): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      const r = await tx.query(
        `INSERT INTO protomesh_tx_global (gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (gid) DO NOTHING`,
        [g.gid, g.mode, g.status, JSON.stringify(g.settings), g.queryTarget, g.traceparent, g.owner, g.nextAt, g.timeoutAt, g.rounds ?? 0, now],
      );
      if (r.rowCount === 0) return false;
      await insertBranches(tx, g.gid, branches, 0, now);
      return true;
    });
  }

  async addBranches(gid: string, status: TxStatus, branches: readonly NewBranch[]): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      // Locks the global row so a concurrent Submit cannot slip between the check and the insert.
      const g = await tx.query<{ status: string }>(`SELECT status FROM protomesh_tx_global WHERE gid = $1 FOR UPDATE`, [gid]);
      if (g.rows[0]?.status !== status) return false;
      const seq = await tx.query<{ n: string | number }>(`SELECT count(*) AS n FROM protomesh_tx_branch WHERE gid = $1`, [gid]);
      await insertBranches(tx, gid, branches, Number(seq.rows[0]?.n ?? 0), now);
      return true;
    });
  }

  async get(gid: string): Promise<GlobalRow | undefined> {
    const r = await this.db.query<RawGlobal>(`SELECT ${GLOBAL_COLUMNS} FROM protomesh_tx_global WHERE gid = $1`, [gid]);
    return r.rows[0] && toGlobal(r.rows[0]);
  }

  async branches(gid: string): Promise<BranchRow[]> {
    const r = await this.db.query<RawBranch>(
      `SELECT gid, branch_id, op, seq, target, method, payload, after_ids, status, attempts, last_error, updated_at FROM protomesh_tx_branch WHERE gid = $1 ORDER BY seq`,
      [gid],
    );
    return r.rows.map(toBranch);
  }

  async attempts(gid: string, limit: number): Promise<AttemptRow[]> {
    const r = await this.db.query<{ gid: string; branch_id: string; op: string; at: string | number; code: number; error: string }>(
      `SELECT gid, branch_id, op, at, code, error FROM protomesh_tx_attempt WHERE gid = $1 ORDER BY id DESC LIMIT $2`,
      [gid, limit],
    );
    return r.rows.reverse().map((a) => ({ gid: a.gid, branchId: a.branch_id, op: a.op as AttemptRow["op"], at: Number(a.at), code: a.code, error: a.error }));
  }

  async list(f: ListFilter): Promise<GlobalRow[]> {
    const { sql, params } = listQuery(f);
    const r = await this.db.query<RawGlobal>(sql, params);
    return r.rows.map(toGlobal);
  }

  async due(now: number, limit: number): Promise<Array<Pick<GlobalRow, "gid" | "nextAt">>> {
    const r = await this.db.query<{ gid: string; next_at: string | number }>(
      `SELECT gid, next_at FROM protomesh_tx_global WHERE status IN ('prepared', 'submitted', 'aborting') AND next_at <= $1 ORDER BY next_at LIMIT $2`,
      [now, limit],
    );
    return r.rows.map((x) => ({ gid: x.gid, nextAt: Number(x.next_at) }));
  }

  async claim(gid: string, expectedNextAt: number, owner: string, leaseUntil: number, now: number): Promise<GlobalRow | undefined> {
    const r = await this.db.query<RawGlobal>(
      `UPDATE protomesh_tx_global SET owner = $2, next_at = $3, rounds = rounds + 1, updated_at = $5
       WHERE gid = $1 AND next_at = $4 AND status IN ('prepared', 'submitted', 'aborting') RETURNING ${GLOBAL_COLUMNS}`,
      [gid, owner, leaseUntil, expectedNextAt, now],
    );
    return r.rows[0] && toGlobal(r.rows[0]);
  }

  async setStatus(gid: string, from: readonly TxStatus[], to: TxStatus, now: number, fields: { lastError?: string; nextAt?: number } = {}): Promise<boolean> {
    const final = !UNFINISHED.includes(to);
    const r = await this.db.query(
      `UPDATE protomesh_tx_global SET status = $2, updated_at = $3, finished_at = $4,
         last_error = COALESCE($5, last_error), next_at = COALESCE($6, next_at)
       WHERE gid = $1 AND status = ANY($7::text[])`,
      [gid, to, now, final ? now : 0, fields.lastError ?? null, fields.nextAt ?? null, [...from]],
    );
    return r.rowCount > 0;
  }

  async reschedule(gid: string, nextAt: number, lastError: string, now: number): Promise<void> {
    await this.db.query(`UPDATE protomesh_tx_global SET next_at = $2, last_error = $3, updated_at = $4 WHERE gid = $1 AND status IN ('prepared', 'submitted', 'aborting')`, [gid, nextAt, lastError, now]);
  }

  async recordCall(b: Pick<BranchRow, "gid" | "branchId" | "op">, o: { status: BranchRow["status"]; code: number; error: string; at: number; log: boolean }): Promise<void> {
    const update = `UPDATE protomesh_tx_branch SET status = $4, attempts = attempts + 1, last_error = $5, updated_at = $6 WHERE gid = $1 AND branch_id = $2 AND op = $3`;
    const params = [b.gid, b.branchId, b.op, o.status, o.error, o.at];
    if (!o.log) {
      await this.db.query(update, params);
      return;
    }
    await this.db.transaction(async (tx) => {
      await tx.query(update, params);
      await tx.query(`INSERT INTO protomesh_tx_attempt (gid, branch_id, op, at, code, error) VALUES ($1, $2, $3, $4, $5, $6)`, [b.gid, b.branchId, b.op, o.at, o.code, o.error]);
    });
  }

  async resetRounds(gid: string, now: number): Promise<void> {
    await this.db.query(`UPDATE protomesh_tx_global SET rounds = 0, updated_at = $2 WHERE gid = $1`, [gid, now]);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** The statement `list` runs for `f` (exported so specs can check its plan). */
export function listQuery(f: ListFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status) where.push(`status = $${params.push(f.status)}`);
  if (f.mode) where.push(`mode = $${params.push(f.mode)}`);
  // Literal, not a parameter: only then can the planner match the partial index on unfinished rows.
  if (f.unfinished) where.push(UNFINISHED_SQL);
  if (f.createdAtOrBefore !== undefined) where.push(`created_at <= $${params.push(f.createdAtOrBefore)}`);
  if (f.before) where.push(`(created_at, gid) < ($${params.push(f.before.createdAt)}, $${params.push(f.before.gid)})`);
  const sql = `SELECT ${GLOBAL_COLUMNS} FROM protomesh_tx_global ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, gid DESC LIMIT $${params.push(f.limit)}`;
  return { sql, params };
}

/** All of a transaction's new branches in one INSERT: one round trip to the store, not one per branch. */
async function insertBranches(tx: SqlQueryable, gid: string, branches: readonly NewBranch[], firstSeq: number, now: number): Promise<void> {
  if (branches.length === 0) return;
  const values: string[] = [];
  const params: unknown[] = [gid, now];
  branches.forEach((b, i) => {
    const at = params.length;
    params.push(b.branchId, b.op, firstSeq + i, b.target, b.method, Buffer.from(b.payload), b.after.join(","));
    values.push(`($1, $${at + 1}, $${at + 2}, $${at + 3}, $${at + 4}, $${at + 5}, $${at + 6}, $${at + 7}, $2)`);
  });
  await tx.query(`INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, after_ids, updated_at) VALUES ${values.join(", ")}`, params);
}

interface RawGlobal {
  gid: string;
  mode: string;
  status: string;
  settings: string;
  query_target: string;
  traceparent: string;
  owner: string;
  next_at: string | number;
  timeout_at: string | number;
  rounds: number;
  last_error: string;
  created_at: string | number;
  updated_at: string | number;
  finished_at: string | number;
}

interface RawBranch {
  gid: string;
  branch_id: string;
  op: string;
  seq: number;
  target: string;
  method: string;
  payload: Uint8Array;
  after_ids: string;
  status: string;
  attempts: number;
  last_error: string;
  updated_at: string | number;
}

function toGlobal(r: RawGlobal): GlobalRow {
  return {
    gid: r.gid,
    mode: r.mode as GlobalRow["mode"],
    status: r.status as GlobalRow["status"],
    settings: JSON.parse(r.settings) as GlobalRow["settings"],
    queryTarget: r.query_target,
    traceparent: r.traceparent,
    owner: r.owner,
    nextAt: Number(r.next_at),
    timeoutAt: Number(r.timeout_at),
    rounds: r.rounds,
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    finishedAt: Number(r.finished_at),
  };
}

function toBranch(r: RawBranch): BranchRow {
  return {
    gid: r.gid,
    branchId: r.branch_id,
    op: r.op as BranchRow["op"],
    seq: r.seq,
    target: r.target,
    method: r.method,
    payload: r.payload,
    after: r.after_ids ? r.after_ids.split(",") : [],
    status: r.status as BranchRow["status"],
    attempts: r.attempts,
    lastError: r.last_error,
    updatedAt: Number(r.updated_at),
  };
}
