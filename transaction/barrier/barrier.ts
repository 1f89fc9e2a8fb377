/**
 * The sub-transaction barrier: a participant's guard against the network's reorderings. In the
 * participant's own local transaction, before its business change, it inserts-if-absent one row
 * per (gid, branch, op) in a barrier table, and from which inserts took effect it knows:
 *
 * - Cancel/compensate before Try/action (empty compensation): the Cancel also inserts the Try's
 *   row; if that insert took effect, no Try ran, so there is nothing to undo.
 * - Try/action after Cancel (hanging, "suspension"): the Try's row is already there (put by the
 *   Cancel), so the Try does nothing.
 * - Duplicates: the op's own row exists, so the repeat does nothing.
 *
 * Only a true insert-if-absent gives this (Postgres `ON CONFLICT DO NOTHING`, SQLite
 * `INSERT OR IGNORE`): an upsert would overwrite the row's `reason` and lose who came first.
 * Concurrent calls for the same row block on the row lock of the first insert until its local
 * transaction ends, so the second sees the first's outcome instead of racing it.
 */
import { RpcError, Status } from "../../runtime/errors";
import type { CallContext } from "../../runtime/context";
import { branchCallOf, checkBranchCall, type BarrierOp, type BranchCall } from "./call-info";
import { pruneCutoff, startPruning, type PeriodicPruneOptions, type PruneOptions } from "./prune";

/** One row of the barrier table. */
export interface BarrierRow {
  readonly mode: string;
  readonly gid: string;
  readonly branchId: string;
  readonly op: BarrierOp;
  /** The op whose call inserted the row (a Cancel inserting the Try's row writes `cancel`). */
  readonly reason: string;
}

/** What a database adapter provides. `Tx` is the adapter's own transaction handle. */
export interface BarrierDriver<Tx> {
  /** Runs `fn` in one local transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Optional: `transaction` that first inserts `rows` if absent, sent together with the BEGIN
   * (one round trip instead of one per statement); `fn` gets, per row, whether it inserted.
   */
  transactionInserting?<T>(rows: readonly BarrierRow[], fn: (tx: Tx, inserted: boolean[]) => Promise<T>): Promise<T>;
  /** Inserts the row unless (gid, branch_id, op) exists; true when it inserted. */
  insertIfAbsent(tx: Tx, row: BarrierRow): Promise<boolean>;
  /** The `reason` of a row, or undefined. */
  reasonOf(tx: Tx, gid: string, branchId: string, op: BarrierOp): Promise<string | undefined>;
  /** Creates the barrier table if it does not exist. */
  createTable(): Promise<void>;
  /** Deletes the rows of closed branches all created before `cutoff` (ms); the count deleted. See `prune.ts`. */
  deleteClosedBefore?(cutoff: number): Promise<number>;
}

/** Why the barrier did not run the business code. */
export type BarrierSkip = "empty-compensation" | "duplicate-or-hanging";

export type BarrierResult<T> = { readonly ran: true; readonly value: T } | { readonly ran: false; readonly skipped: BarrierSkip };

/** Ops that undo another; the value is the op they undo. */
const UNDOES: Partial<Record<BarrierOp, BarrierOp>> = { cancel: "try", compensate: "action" };
/** Ops that must never fail (the coordinator retries them until they succeed). */
const MUST_SUCCEED: ReadonlySet<BarrierOp> = new Set(["confirm", "cancel", "compensate", "notify"]);

/** The message producer's row in the barrier: branch "00", op "msg". */
export const MSG_BRANCH = "00";

/** A barrier over one database. Create it with `pgBarrier`, `pgliteBarrier` or `sqliteBarrier`. */
export class Barrier<Tx> {
  constructor(readonly driver: BarrierDriver<Tx>) {}

  /**
   * Runs `business` in a local transaction guarded by the barrier, for the branch call in
   * `call` (a handler's context, or a BranchCall). Throw `RpcError` ABORTED from a Try or
   * action to fail the global transaction; any other error rolls the local transaction back
   * and asks the coordinator to retry later. A Confirm, Cancel or compensation may not fail:
   * ABORTED from one is reported as FAILED_PRECONDITION (retry), never as a failure.
   */
  async run<T>(call: CallContext | BranchCall, business: (tx: Tx) => Promise<T>): Promise<BarrierResult<T>> {
    const info = "metadata" in call ? branchCallOf(call) : checkBranchCall(call);
    try {
      const undone = UNDOES[info.op];
      // The undone op's row first (a Cancel claims its Try's slot), then the op's own.
      const rows: BarrierRow[] = undone ? [{ ...info, op: undone, reason: info.op }, { ...info, reason: info.op }] : [{ ...info, reason: info.op }];
      const guarded = async (tx: Tx, inserted: boolean[]): Promise<BarrierResult<T>> => {
        if (undone && inserted[0]) return { ran: false, skipped: "empty-compensation" };
        if (!inserted[inserted.length - 1]) return { ran: false, skipped: "duplicate-or-hanging" };
        return { ran: true, value: await business(tx) };
      };
      const driver = this.driver;
      if (driver.transactionInserting) return await driver.transactionInserting(rows, guarded);
      return await driver.transaction(async (tx) => {
        const inserted: boolean[] = [];
        for (const row of rows) inserted.push(await driver.insertIfAbsent(tx, row));
        return guarded(tx, inserted);
      });
    } catch (err) {
      const e = RpcError.from(err);
      if (MUST_SUCCEED.has(info.op) && e.code === Status.ABORTED) {
        throw new RpcError(Status.FAILED_PRECONDITION, `${info.op} must not fail; it will be retried: ${e.rawMessage}`, undefined, { cause: err });
      }
      throw err;
    }
  }

  /**
   * The producer side of a reliable message: runs `business` in a local transaction that also
   * writes the message's barrier row. The coordinator's query-back (`queryPrepared`) finds the
   * row if and only if this committed.
   */
  async prepareMessage<T>(gid: string, business: (tx: Tx) => Promise<T>): Promise<T> {
    checkBranchCall({ mode: "msg", gid, branchId: MSG_BRANCH, op: "msg" });
    return this.driver.transaction(async (tx) => {
      const inserted = await this.driver.insertIfAbsent(tx, { mode: "msg", gid, branchId: MSG_BRANCH, op: "msg", reason: "msg" });
      // Already there: a query-back decided first that this message was rolled back.
      if (!inserted) throw new RpcError(Status.ABORTED, `message ${gid} was already rolled back by a query-back`);
      return business(tx);
    });
  }

  /**
   * Answers a query-back for a message: "committed" when the producer's local transaction
   * committed, "rolledback" when it did not and now never will. The insert of a `rollback` row
   * waits on the row lock while the producer's transaction is still open, so the answer is
   * never "still running".
   */
  async queryPrepared(gid: string): Promise<"committed" | "rolledback"> {
    checkBranchCall({ mode: "msg", gid, branchId: MSG_BRANCH, op: "msg" });
    return this.driver.transaction(async (tx) => {
      await this.driver.insertIfAbsent(tx, { mode: "msg", gid, branchId: MSG_BRANCH, op: "msg", reason: "rollback" });
      const reason = await this.driver.reasonOf(tx, gid, MSG_BRANCH, "msg");
      return reason === "rollback" ? "rolledback" : "committed";
    });
  }

  /**
   * Deletes the rows of branches that are closed here (second phase done: Confirm, Cancel or
   * compensation recorded; any message or notification branch) and whose rows are all older
   * than `olderThanMs`. Open branches are never deleted. Returns how many rows went.
   * The retention must outlast any retry of a finished branch: see docs/transactions.md.
   */
  async prune(options: PruneOptions): Promise<number> {
    const cutoff = pruneCutoff(options);
    if (!this.driver.deleteClosedBefore) throw new TypeError("this barrier driver cannot prune (no deleteClosedBefore)");
    return this.driver.deleteClosedBefore(cutoff);
  }

  /** Runs `prune` every `everyMs` (default 1 h) until the returned function is called. */
  startPruning(options: PeriodicPruneOptions): () => void {
    return startPruning(this, options);
  }
}

/** Default barrier table name. */
export const BARRIER_TABLE = "protomesh_barrier";

/** Checks a table name before it is put into SQL text. */
export function checkTableName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/.test(name)) throw new TypeError(`barrier table name "${name}" is not a plain SQL identifier`);
  return name;
}
