/**
 * Deleting old barrier rows. A row can only go once nothing that could still arrive needs it:
 *
 * - A branch is *closed* in the participant's own table when its second phase has a row: a
 *   TCC branch with a `confirm` or `cancel` row, a saga branch with a `compensate` row, and any
 *   branch of a message or notification (nothing ever undoes those). Only closed branches are
 *   pruned. An open one — a Try still waiting for its Confirm or Cancel, a saga action that may
 *   still be compensated — keeps its rows whatever their age: deleting a Try's row would turn
 *   the Cancel that must undo it into an "empty compensation" and lose the undo.
 * - Every row of the branch must be older than the cut-off, so a branch is removed whole and a
 *   late call finds either all its rows or none.
 * - What a late call does after the rows are gone: a Cancel (or compensation) inserts its
 *   origin's row first and so still sees an empty compensation — it never runs. A Try, an
 *   action or a duplicate Confirm would run again, so the cut-off must be older than the
 *   longest a transaction can keep calling this branch (its timeout, plus retries until the
 *   coordinator records the answer). Pick days, not seconds.
 */
import type { Barrier } from "./barrier";

export interface PruneOptions {
  /** Rows younger than this (ms) are kept. No default: choose it against your coordinator's settings. */
  olderThanMs: number;
}

export interface PeriodicPruneOptions extends PruneOptions {
  /** Interval between prunes (default 1 h). */
  everyMs?: number;
  /** Called with each run's deleted count or error (default: ignore; the next run tries again). */
  onResult?: (result: { deleted: number } | { error: unknown }) => void;
}

/** Smallest retention accepted: below a minute a late retry of a finished branch is plausible. */
export const MIN_RETENTION_MS = 60_000;

/** Checks the options and returns the cut-off time (rows created before it may go). */
export function pruneCutoff(options: PruneOptions, now = Date.now()): number {
  const ms = options.olderThanMs;
  if (!Number.isFinite(ms) || ms < MIN_RETENTION_MS) throw new RangeError(`barrier prune: olderThanMs must be at least ${MIN_RETENTION_MS} (got ${String(ms)})`);
  return now - ms;
}

/**
 * The DELETE for one barrier table, with the cut-off as its only parameter (`p`: `$1` for
 * Postgres, `?` for SQLite — written twice there because SQLite numbers `?` by position).
 */
export function pruneSql(table: string, dialect: "postgres" | "sqlite"): string {
  const p = dialect === "postgres" ? ["$1", "$1"] : ["?", "?"];
  return `DELETE FROM ${table} WHERE created_at < ${p[0]}
  AND (mode IN ('msg', 'notify') OR EXISTS (SELECT 1 FROM ${table} c WHERE c.gid = ${table}.gid AND c.branch_id = ${table}.branch_id AND c.op IN ('confirm', 'cancel', 'compensate')))
  AND NOT EXISTS (SELECT 1 FROM ${table} n WHERE n.gid = ${table}.gid AND n.branch_id = ${table}.branch_id AND n.created_at >= ${p[1]})`;
}

/** Runs `barrier.prune` every `everyMs` until the returned function is called. The timer does not keep the process alive. */
export function startPruning<Tx>(barrier: Barrier<Tx>, options: PeriodicPruneOptions): () => void {
  pruneCutoff(options); // bad options fail now, not an hour later
  const every = options.everyMs ?? 3_600_000;
  if (!Number.isFinite(every) || every < 1000) throw new RangeError(`barrier prune: everyMs must be at least 1000 (got ${String(every)})`);
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow prune is not stacked under the next one
    running = true;
    barrier
      .prune(options)
      .then((deleted) => options.onResult?.({ deleted }), (error: unknown) => options.onResult?.({ error }))
      .finally(() => (running = false));
  }, every);
  timer.unref();
  return () => clearInterval(timer);
}
