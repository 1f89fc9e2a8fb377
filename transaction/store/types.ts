/**
 * What the coordinator stores: global transactions, their branches, and the calls made to them.
 * Times are epoch milliseconds from the coordinators' clocks (keep them NTP-synced: a skewed
 * instance claims work early or late, never twice at once — claims are compare-and-set).
 */

/** tcc | saga | msg | notify */
export type TxMode = "tcc" | "saga" | "msg" | "notify";
export const TX_MODES: readonly TxMode[] = ["tcc", "saga", "msg", "notify"];

/**
 * `prepared`: TCC open for Try calls, or a message waiting for its producer's commit.
 * `submitted`: moving forward (Confirm, saga actions, deliveries). `aborting`: moving back
 * (Cancel, compensations). `succeed` and `failed` are final.
 */
export type TxStatus = "prepared" | "submitted" | "aborting" | "succeed" | "failed";
export const TX_STATUSES: readonly TxStatus[] = ["prepared", "submitted", "aborting", "succeed", "failed"];
export const UNFINISHED: readonly TxStatus[] = ["prepared", "submitted", "aborting"];

/** try | confirm | cancel | action | compensate | notify (and `msg` for a message's producer row in the barrier). */
export type BranchOp = "try" | "confirm" | "cancel" | "action" | "compensate" | "notify";
export const BRANCH_OPS: readonly BranchOp[] = ["try", "confirm", "cancel", "action", "compensate", "notify"];

export type BranchStatus = "prepared" | "succeed" | "failed";

/** Resolved per-transaction settings (defaults filled in). */
export interface TxSettings {
  timeoutMs: number;
  retryIntervalMs: number;
  maxRetryIntervalMs: number;
  /** 0 = retry forever. */
  retryLimit: number;
  requestTimeoutMs: number;
  concurrent: boolean;
  scheduleMs: number[];
  /** Notification: no attempt once it is this old (from its creation); 0 = no age limit. */
  maxAgeMs: number;
}

export interface GlobalRow {
  gid: string;
  mode: TxMode;
  status: TxStatus;
  settings: TxSettings;
  queryTarget: string;
  traceparent: string;
  owner: string;
  nextAt: number;
  timeoutAt: number;
  rounds: number;
  lastError: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number;
}

export interface BranchRow {
  gid: string;
  branchId: string;
  op: BranchOp;
  target: string;
  method: string;
  payload: Uint8Array;
  after: string[];
  status: BranchStatus;
  attempts: number;
  lastError: string;
  updatedAt: number;
  /** Insertion order within the transaction. */
  seq: number;
}

/**
 * A transaction as `submitPrepared` left it. `branches` are its branches as the committing
 * statement read them, present only when that read saw every branch the transaction counts
 * (a registration that committed while the statement waited for the row is not in its
 * snapshot: then they are left out, and the caller reads them afresh).
 */
export interface SubmittedRow extends GlobalRow {
  branches?: BranchRow[];
}

export interface AttemptRow {
  gid: string;
  branchId: string;
  op: BranchOp;
  at: number;
  code: number;
  error: string;
}

export interface NewBranch {
  branchId: string;
  op: BranchOp;
  target: string;
  method: string;
  payload: Uint8Array;
  after: string[];
}

export interface NewGlobal {
  gid: string;
  mode: TxMode;
  status: TxStatus;
  settings: TxSettings;
  queryTarget: string;
  traceparent: string;
  owner: string;
  nextAt: number;
  timeoutAt: number;
  /** Rounds already counted (1 when the creating instance drives the first round itself). */
  rounds?: number;
}

/**
 * A branch call that succeeded and is not recorded yet. A round records its successes with the
 * status move that ends it (one statement instead of one per call); if the coordinator dies
 * in between, the next round calls the branch again and its barrier makes that a no-op.
 */
export interface SucceededCall {
  branchId: string;
  op: BranchOp;
  at: number;
}

export interface ListFilter {
  status?: TxStatus;
  mode?: TxMode;
  /** Only rows created at or before this instant (epoch ms): "older than" as an absolute cut. */
  createdAtOrBefore?: number;
  /** Only prepared, submitted or aborting rows; with `createdAtOrBefore`, the stuck ones. */
  unfinished?: boolean;
  limit: number;
  /** Return rows created before this (gid, createdAt) page token. */
  before?: { createdAt: number; gid: string };
}

/** The coordinator's storage. Every method may throw when the database is unreachable. */
/** What a status move sets besides the status (see `TxStore.setStatus`). */
export interface MoveFields {
  lastError?: string;
  nextAt?: number;
  calls?: readonly SucceededCall[];
  countRound?: boolean;
}

export interface TxStore {
  /** Inserts a transaction and its branches; false when the gid exists already. */
  create(global: NewGlobal, branches: readonly NewBranch[]): Promise<boolean>;
  /**
   * Adds branches to a transaction of `mode` in `status`, in one statement; false when it is
   * gone, of another mode or in another status. Branches registered at the same time get
   * distinct, increasing `seq`.
   */
  addBranches(gid: string, where: { status: TxStatus; mode: TxMode }, branches: readonly NewBranch[]): Promise<boolean>;
  get(gid: string): Promise<GlobalRow | undefined>;
  branches(gid: string): Promise<BranchRow[]>;
  attempts(gid: string, limit: number): Promise<AttemptRow[]>;
  list(filter: ListFilter): Promise<GlobalRow[]>;
  /** Unfinished transactions due at `now` (candidates for `claim`). */
  due(now: number, limit: number): Promise<Array<Pick<GlobalRow, "gid" | "nextAt">>>;
  /**
   * Compare-and-set claim: takes `gid` for `owner` until `leaseUntil` only if it is still
   * unfinished and its `nextAt` is still `expectedNextAt`. Returns the claimed row, or undefined
   * when another instance got there first.
   */
  claim(gid: string, expectedNextAt: number, owner: string, leaseUntil: number, now: number): Promise<GlobalRow | undefined>;
  /**
   * Moves `gid` from one of `from` to `to`; false when it was not in one of `from`. `calls`
   * (successful branch calls not recorded yet) are recorded in the same statement, whatever
   * the move's outcome. `countRound`: the move starts a round its instance drives itself,
   * without a claim (which would count it), so `rounds` goes up by one with the move.
   */
  setStatus(gid: string, from: readonly TxStatus[], to: TxStatus, now: number, fields?: MoveFields): Promise<boolean>;
  /**
   * Commits a prepared transaction: `prepared` → `submitted`, held for this instance for the
   * first round's lease (`leaseMs(settings, 1)`), that round counted in `rounds`. Returns the row, or undefined when it was
   * not prepared (or not of one of `modes`); with its branches when the same statement could
   * read all of them (see `SubmittedRow`).
   */
  submitPrepared(gid: string, modes: readonly TxMode[], now: number): Promise<SubmittedRow | undefined>;
  /** Records when the transaction may next be driven and why it waits (and `calls`, as in `setStatus`). */
  reschedule(gid: string, nextAt: number, lastError: string, now: number, calls?: readonly SucceededCall[]): Promise<void>;
  /** Records one call's outcome on the branch (and in the attempts log when `log`). */
  recordCall(b: Pick<BranchRow, "gid" | "branchId" | "op">, outcome: { status: BranchStatus; code: number; error: string; at: number; log: boolean }): Promise<void>;
  /** Resets the round count so a retried transaction gets its full retry budget again. */
  resetRounds(gid: string, now: number): Promise<void>;
  close(): Promise<void>;
}
