/**
 * The coordinator's store on Postgres SQL, shared by the `pg` and PGlite clients.
 */
import type { SqlClient } from "./sql-client";
import { Batcher } from "./batcher";
import { migrate } from "./migrations";
import type { AttemptRow, BranchRow, GlobalRow, ListFilter, MoveFields, NewBranch, NewGlobal, SubmittedRow, SucceededCall, TxMode, TxStatus, TxStore } from "./types";
import { UNFINISHED } from "./types";

const UNFINISHED_SQL = `status IN (${UNFINISHED.map((s) => `'${s}'`).join(", ")})`;
const GLOBAL_COLUMNS = "gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, last_error, created_at, updated_at, finished_at";
/** The same, of the table aliased `t` (in statements that join it with parameter rows). */
const GLOBAL_COLUMNS_OF_T = GLOBAL_COLUMNS.split(", ").map((c) => `t.${c}`).join(", ");

/**
 * For the statements over several transactions (`unnest` of parameter arrays), the poll for due
 * transactions and the query API's reads: planned on every run, from the tables as they are.
 * Kept prepared, Postgres would reuse a plan made while the tables were small (a hash join over
 * a full scan) as they grow.
 */
const PLANNED_PER_RUN = { prepared: false } as const;

/** Opens the store on `db`, running migrations first. */
export async function openSqlStore(db: SqlClient): Promise<TxStore> {
  await migrate(db);
  return new SqlStore(db);
}

interface Add {
  gid: string;
  where: { status: TxStatus; mode: TxMode };
  branches: readonly NewBranch[];
}

interface Move {
  gid: string;
  from: readonly TxStatus[];
  to: TxStatus;
  now: number;
  fields: MoveFields;
}

class SqlStore implements TxStore {
  /**
   * On a Postgres server, creations and status moves of concurrent transactions share
   * statements (see `Batcher`): each is one round trip and one commit per transaction
   * otherwise, the bulk of what a transaction costs the store. PGlite runs in this process,
   * one statement at a time, and keeps the one-transaction statements.
   */
  private readonly creates?: Batcher<{ g: NewGlobal; branches: readonly NewBranch[] }, boolean>;
  private readonly moves?: Batcher<Move, boolean>;
  private readonly adds?: Batcher<Add, boolean>;
  private readonly submits?: Batcher<{ gid: string; modes: readonly TxMode[]; now: number }, SubmittedRow | undefined>;

  constructor(private readonly db: SqlClient) {
    if (db.kind === "postgres") {
      this.creates = new Batcher((items) => this.createMany(items), (i) => i.g.gid);
      this.moves = new Batcher((items) => this.moveMany(items), (m) => m.gid);
      this.adds = new Batcher((items) => this.addMany(items), (a) => a.gid);
      this.submits = new Batcher((items) => this.submitMany(items), (x) => x.gid);
    }
  }

  create(g: NewGlobal, branches: readonly NewBranch[]): Promise<boolean> {
    return this.creates ? this.creates.submit({ g, branches }) : this.createOne(g, branches);
  }

  /** Several transactions with their branches in one statement; per transaction, false when its gid exists already. */
  private async createMany(items: ReadonlyArray<{ g: NewGlobal; branches: readonly NewBranch[] }>): Promise<boolean[]> {
    if (items.length === 1) return [await this.createOne(items[0]!.g, items[0]!.branches)];
    const now = Date.now();
    const col = <T>(f: (g: NewGlobal) => T) => items.map((i) => f(i.g));
    const bs = items.flatMap((i) => i.branches.map((b, seq) => ({ gid: i.g.gid, b, seq })));
    const params: unknown[] = [
      col((g) => g.gid), col((g) => g.mode), col((g) => g.status), col((g) => JSON.stringify(g.settings)), col((g) => g.queryTarget), col((g) => g.traceparent), col((g) => g.owner),
      col((g) => g.nextAt), col((g) => g.timeoutAt), col((g) => g.rounds ?? 0), now, items.map((i) => i.branches.length),
      bs.map((x) => x.gid), bs.map((x) => x.b.branchId), bs.map((x) => x.b.op), bs.map((x) => x.seq), bs.map((x) => x.b.target), bs.map((x) => x.b.method), bs.map((x) => Buffer.from(x.b.payload)), bs.map((x) => x.b.after.join(",")),
    ];
    const r = await this.db.query<{ gid: string }>(
      `WITH g AS (INSERT INTO protomesh_tx_global (gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, created_at, updated_at, branch_count)
                  SELECT v.gid, v.mode, v.status, v.settings, v.query_target, v.traceparent, v.owner, v.next_at, v.timeout_at, v.rounds, $11, $11, v.branch_count
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::integer[], $12::integer[])
                    AS v(gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, branch_count)
                  ON CONFLICT (gid) DO NOTHING RETURNING gid),
       b AS (INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, after_ids, updated_at)
             SELECT v.gid, v.branch_id, v.op, v.seq, v.target, v.method, v.payload, v.after_ids, $11
             FROM unnest($13::text[], $14::text[], $15::text[], $16::integer[], $17::text[], $18::text[], $19::bytea[], $20::text[]) AS v(gid, branch_id, op, seq, target, method, payload, after_ids)
             JOIN g ON g.gid = v.gid)
       SELECT gid FROM g`,
      params,
      PLANNED_PER_RUN,
    );
    const created = new Set(r.rows.map((x) => x.gid));
    return items.map((i) => created.has(i.g.gid));
  }

  private async createOne(g: NewGlobal, branches: readonly NewBranch[]): Promise<boolean> {
    const now = Date.now();
    const params: unknown[] = [g.gid, g.mode, g.status, JSON.stringify(g.settings), g.queryTarget, g.traceparent, g.owner, g.nextAt, g.timeoutAt, g.rounds ?? 0, now, branches.length];
    const insertGlobal = `INSERT INTO protomesh_tx_global (gid, mode, status, settings, query_target, traceparent, owner, next_at, timeout_at, rounds, created_at, updated_at, branch_count)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) ON CONFLICT (gid) DO NOTHING RETURNING gid`;
    if (branches.length === 0) return (await this.db.query(insertGlobal, params)).rows.length > 0;
    // One statement: the branches go in only with the transaction, so no BEGIN/COMMIT round trips.
    const values = branchValues(params, branches, "0");
    const r = await this.db.query(
      `WITH g AS (${insertGlobal}),
       b AS (INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, after_ids, updated_at)
             SELECT g.gid, v.branch_id, v.op, v.seq, v.target, v.method, v.payload, v.after_ids, $11 FROM g CROSS JOIN (VALUES ${values}) AS v(branch_id, op, seq, target, method, payload, after_ids))
       SELECT gid FROM g`,
      params,
    );
    return r.rows.length > 0;
  }

  async addBranches(gid: string, where: { status: TxStatus; mode: TxMode }, branches: readonly NewBranch[]): Promise<boolean> {
    if (branches.length === 0) return (await this.get(gid))?.status === where.status;
    return this.adds ? this.adds.submit({ gid, where, branches }) : this.addOne({ gid, where, branches });
  }

  /** Branches of several transactions (each its own non-empty set) in one statement; per transaction, whether they went in. */
  private async addMany(adds: readonly Add[]): Promise<boolean[]> {
    if (adds.length === 1) return [await this.addOne(adds[0]!)];
    const now = Date.now();
    const bs = adds.flatMap((a) => a.branches.map((b, i) => ({ gid: a.gid, b, i })));
    const params: unknown[] = [
      adds.map((a) => a.gid), adds.map((a) => a.where.status), adds.map((a) => a.where.mode), adds.map((a) => a.branches.length), now,
      bs.map((x) => x.gid), bs.map((x) => x.b.branchId), bs.map((x) => x.b.op), bs.map((x) => x.i), bs.map((x) => x.b.target), bs.map((x) => x.b.method), bs.map((x) => Buffer.from(x.b.payload)), bs.map((x) => x.b.after.join(",")),
    ];
    // As in `addOne`, per transaction: the UPDATE locks its row and hands out the sequence numbers.
    const r = await this.db.query<{ gid: string }>(
      `WITH g AS (UPDATE protomesh_tx_global t SET branch_count = t.branch_count + v.n, updated_at = $5
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) AS v(gid, status, mode, n)
                  WHERE t.gid = v.gid AND t.status = v.status AND t.mode = v.mode RETURNING t.gid, t.branch_count - v.n AS first)
       INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, after_ids, updated_at)
       SELECT g.gid, b.branch_id, b.op, g.first + b.i, b.target, b.method, b.payload, b.after_ids, $5
       FROM g JOIN unnest($6::text[], $7::text[], $8::text[], $9::integer[], $10::text[], $11::text[], $12::bytea[], $13::text[]) AS b(gid, branch_id, op, i, target, method, payload, after_ids) ON b.gid = g.gid
       RETURNING gid`,
      params,
      PLANNED_PER_RUN,
    );
    const added = new Set(r.rows.map((x) => x.gid));
    return adds.map((a) => added.has(a.gid));
  }

  private async addOne({ gid, where, branches }: Add): Promise<boolean> {
    const now = Date.now();
    const params: unknown[] = [gid, where.status, where.mode, now, branches.length];
    // The UPDATE locks the global row (a concurrent Submit waits, or makes this match nothing)
    // and hands out the branches' sequence numbers from its counter.
    const values = branchValues(params, branches, "g.first");
    const r = await this.db.query(
      `WITH g AS (UPDATE protomesh_tx_global SET branch_count = branch_count + $5, updated_at = $4
                  WHERE gid = $1 AND status = $2 AND mode = $3 RETURNING branch_count - $5 AS first)
       INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, after_ids, updated_at)
       SELECT $1, v.branch_id, v.op, v.seq, v.target, v.method, v.payload, v.after_ids, $4 FROM g CROSS JOIN LATERAL (VALUES ${values}) AS v(branch_id, op, seq, target, method, payload, after_ids)
       RETURNING branch_id`,
      params,
    );
    return r.rows.length > 0;
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
      PLANNED_PER_RUN,
    );
    return r.rows.reverse().map((a) => ({ gid: a.gid, branchId: a.branch_id, op: a.op as AttemptRow["op"], at: Number(a.at), code: a.code, error: a.error }));
  }

  async list(f: ListFilter): Promise<GlobalRow[]> {
    const { sql, params } = listQuery(f);
    const r = await this.db.query<RawGlobal>(sql, params, PLANNED_PER_RUN);
    return r.rows.map(toGlobal);
  }

  async due(now: number, limit: number): Promise<Array<Pick<GlobalRow, "gid" | "nextAt">>> {
    const r = await this.db.query<{ gid: string; next_at: string | number }>(
      `SELECT gid, next_at FROM protomesh_tx_global WHERE status IN ('prepared', 'submitted', 'aborting') AND next_at <= $1 ORDER BY next_at LIMIT $2`,
      [now, limit],
      PLANNED_PER_RUN,
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

  setStatus(gid: string, from: readonly TxStatus[], to: TxStatus, now: number, fields: MoveFields = {}): Promise<boolean> {
    return this.moves ? this.moves.submit({ gid, from, to, now, fields }) : this.moveOne({ gid, from, to, now, fields });
  }

  /** Several moves (of distinct transactions) in one statement, each with its calls; per move, whether it happened. */
  private async moveMany(moves: readonly Move[]): Promise<boolean[]> {
    if (moves.length === 1) return [await this.moveOne(moves[0]!)];
    const calls = moves.flatMap((m) => (m.fields.calls ?? []).map((c) => ({ gid: m.gid, c })));
    const params: unknown[] = [
      moves.map((m) => m.gid), moves.map((m) => m.to), moves.map((m) => m.now), moves.map((m) => (UNFINISHED.includes(m.to) ? 0 : m.now)),
      moves.map((m) => m.fields.lastError ?? null), moves.map((m) => m.fields.nextAt ?? null), moves.map((m) => m.from.join(",")),
      moves.map((m) => (m.fields.countRound ? 1 : 0)),
      calls.map((x) => x.gid), calls.map((x) => x.c.branchId), calls.map((x) => x.c.op), calls.map((x) => x.c.at),
    ];
    const r = await this.db.query<{ gid: string }>(
      `WITH calls AS (UPDATE protomesh_tx_branch t SET status = 'succeed', attempts = t.attempts + 1, last_error = '', updated_at = c.at
                      FROM unnest($9::text[], $10::text[], $11::text[], $12::bigint[]) AS c(gid, branch_id, op, at)
                      WHERE t.gid = c.gid AND t.branch_id = c.branch_id AND t.op = c.op)
       UPDATE protomesh_tx_global g SET status = v.status, updated_at = v.now, finished_at = v.finished_at,
         last_error = COALESCE(v.last_error, g.last_error), next_at = COALESCE(v.next_at, g.next_at), rounds = g.rounds + v.add_round
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::int[]) AS v(gid, status, now, finished_at, last_error, next_at, from_list, add_round)
       WHERE g.gid = v.gid AND g.status = ANY(string_to_array(v.from_list, ',')) RETURNING g.gid`,
      params,
      PLANNED_PER_RUN,
    );
    const moved = new Set(r.rows.map((x) => x.gid));
    return moves.map((m) => moved.has(m.gid));
  }

  private async moveOne({ gid, from, to, now, fields }: Move): Promise<boolean> {
    const final = !UNFINISHED.includes(to);
    const params: unknown[] = [gid, to, now, final ? now : 0, fields.lastError ?? null, fields.nextAt ?? null, [...from], fields.countRound ? 1 : 0];
    const r = await this.db.query(
      `${withCalls(params, fields.calls)}UPDATE protomesh_tx_global SET status = $2, updated_at = $3, finished_at = $4,
         last_error = COALESCE($5, last_error), next_at = COALESCE($6, next_at), rounds = rounds + $8
       WHERE gid = $1 AND status = ANY($7::text[]) RETURNING gid`,
      params,
    );
    return r.rows.length > 0;
  }

  submitPrepared(gid: string, modes: readonly TxMode[], now: number): Promise<SubmittedRow | undefined> {
    return this.submits ? this.submits.submit({ gid, modes, now }) : this.submitMany([{ gid, modes, now }]).then((r) => r[0]);
  }

  /**
   * Commits prepared transactions in one statement, which also reads their branches (the first
   * round needs them). Per transaction, its row when it was committed.
   */
  private async submitMany(items: ReadonlyArray<{ gid: string; modes: readonly TxMode[]; now: number }>): Promise<Array<SubmittedRow | undefined>> {
    // next_at = now + leaseMs(settings, 1), from the stored settings: max(retry interval, request timeout + 1 s).
    // rounds + 1: the committing instance drives the first round itself, without a claim (which would count it).
    const set = `status = 'submitted', updated_at = v.now, rounds = t.rounds + 1,
         next_at = v.now + GREATEST((t.settings::jsonb->>'retryIntervalMs')::bigint, (t.settings::jsonb->>'requestTimeoutMs')::bigint + 1000)`;
    const branchColumns = `b.branch_id AS b_branch_id, b.op AS b_op, b.seq AS b_seq, b.target AS b_target, b.method AS b_method, b.payload AS b_payload,
              b.after_ids AS b_after_ids, b.status AS b_status, b.attempts AS b_attempts, b.last_error AS b_last_error, b.updated_at AS b_updated_at`;
    type Row = RawGlobal & { branch_count: number } & Partial<Record<`b_${keyof RawBranch}`, unknown>>;
    const r =
      items.length === 1
        ? await this.db.query<Row>(
            // One transaction: a primary-key lookup, prepared once per connection.
            `WITH u AS (UPDATE protomesh_tx_global t SET ${set} FROM (SELECT $2::bigint AS now) v
                        WHERE t.gid = $1 AND t.status = 'prepared' AND t.mode = ANY($3::text[]) RETURNING ${GLOBAL_COLUMNS_OF_T}, t.branch_count)
             SELECT u.*, ${branchColumns} FROM u LEFT JOIN protomesh_tx_branch b ON b.gid = u.gid ORDER BY b.seq`,
            [items[0]!.gid, items[0]!.now, [...items[0]!.modes]],
          )
        : await this.db.query<Row>(
            `WITH u AS (UPDATE protomesh_tx_global t SET ${set}
                        FROM unnest($1::text[], $2::bigint[], $3::text[]) AS v(gid, now, modes)
                        WHERE t.gid = v.gid AND t.status = 'prepared' AND t.mode = ANY(string_to_array(v.modes, ','))
                        RETURNING ${GLOBAL_COLUMNS_OF_T}, t.branch_count)
             SELECT u.*, ${branchColumns} FROM u LEFT JOIN protomesh_tx_branch b ON b.gid = u.gid ORDER BY u.gid, b.seq`,
            [items.map((x) => x.gid), items.map((x) => x.now), items.map((x) => x.modes.join(","))],
            PLANNED_PER_RUN,
          );
    const byGid = new Map<string, SubmittedRow>();
    for (const row of r.rows) {
      let g = byGid.get(row.gid);
      if (!g) byGid.set(row.gid, (g = { ...toGlobal(row), branches: [] }));
      if (row.b_branch_id == null) continue;
      g.branches!.push(toBranch({ gid: row.gid, branch_id: row.b_branch_id, op: row.b_op, seq: row.b_seq, target: row.b_target, method: row.b_method, payload: row.b_payload, after_ids: row.b_after_ids, status: row.b_status, attempts: row.b_attempts, last_error: row.b_last_error, updated_at: row.b_updated_at } as RawBranch));
    }
    // The statement's snapshot misses branches registered while it waited for the row lock; the row's counter does not.
    for (const row of r.rows) {
      const g = byGid.get(row.gid)!;
      if (g.branches && g.branches.length !== Number(row.branch_count)) delete g.branches;
    }
    return items.map((x) => byGid.get(x.gid));
  }

  async reschedule(gid: string, nextAt: number, lastError: string, now: number, calls?: readonly SucceededCall[]): Promise<void> {
    const params: unknown[] = [gid, nextAt, lastError, now];
    await this.db.query(`${withCalls(params, calls)}UPDATE protomesh_tx_global SET next_at = $2, last_error = $3, updated_at = $4 WHERE gid = $1 AND status IN ('prepared', 'submitted', 'aborting')`, params);
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

/**
 * A VALUES list for `branches`, its parameters appended to `params`; `seqBase` is the SQL for
 * the first branch's sequence number.
 */
function branchValues(params: unknown[], branches: readonly NewBranch[], seqBase: string): string {
  return branches
    .map((b, i) => {
      const at = params.length;
      params.push(b.branchId, b.op, b.target, b.method, Buffer.from(b.payload), b.after.join(","));
      return `($${at + 1}::text, $${at + 2}::text, ${seqBase} + ${i}, $${at + 3}::text, $${at + 4}::text, $${at + 5}::bytea, $${at + 6}::text)`;
    })
    .join(", ");
}

/**
 * A `WITH` clause that records `calls` (successful branch calls) on their branch rows, to put in
 * front of a statement on the same transaction (`$1` is its gid); empty when there are none.
 */
function withCalls(params: unknown[], calls: readonly SucceededCall[] | undefined): string {
  if (!calls || calls.length === 0) return "";
  const ids = `$${params.push(calls.map((c) => c.branchId))}`;
  const ops = `$${params.push(calls.map((c) => c.op))}`;
  const ats = `$${params.push(calls.map((c) => c.at))}`;
  return `WITH calls AS (UPDATE protomesh_tx_branch t SET status = 'succeed', attempts = t.attempts + 1, last_error = '', updated_at = v.at
      FROM unnest(${ids}::text[], ${ops}::text[], ${ats}::bigint[]) AS v(branch_id, op, at)
      WHERE t.gid = $1 AND t.branch_id = v.branch_id AND t.op = v.op) `;
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
    // Settings stored before `maxAgeMs` existed have none: no age limit.
    settings: { maxAgeMs: 0, ...(JSON.parse(r.settings) as Partial<GlobalRow["settings"]>) } as GlobalRow["settings"],
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
