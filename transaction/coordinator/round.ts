/**
 * One round of driving a transaction: what a mode sees and what it answers. A mode reads the
 * stored transaction and branches, calls the branches still to be called, moves the status,
 * and says whether the transaction is final or when to come back.
 */
import type { BranchRow, GlobalRow, TxStatus } from "../store/types";
import type { Verdict } from "./branch-caller";

export interface CallOutcome {
  readonly verdict: Verdict;
  readonly code: number;
  readonly message: string;
}

export interface RoundContext {
  readonly global: GlobalRow;
  readonly branches: readonly BranchRow[];
  /** Calls a branch and records the outcome on it (and in the attempts log when it did not succeed). */
  call(branch: BranchRow): Promise<CallOutcome>;
  /** Calls the message producer's QueryPrepared. */
  queryPrepared(): Promise<CallOutcome>;
  /** Moves the status; false when another instance moved it first (the round then stops). */
  move(from: readonly TxStatus[], to: TxStatus, lastError?: string): Promise<boolean>;
  now(): number;
}

/**
 * `final`: the status is final (or someone else's), with `gaveUp` when this round ended it
 * `failed` by giving up (a notification out of schedule or past its age: the `gave-up` alert
 * goes out); `retry`: come back after the backoff; `wait`: come back at `at`.
 */
export type RoundResult = { readonly kind: "final"; readonly gaveUp?: { readonly attempts: number; readonly error: string } } | { readonly kind: "retry"; readonly error: string } | { readonly kind: "wait"; readonly at: number; readonly error: string };

export const FINAL: RoundResult = { kind: "final" };

/** A mode: TCC, saga, message or notification. */
export interface Mode {
  round(ctx: RoundContext): Promise<RoundResult>;
}

/** Calls `ops` one after another until one does not succeed. */
export async function callInOrder(ctx: RoundContext, ops: readonly BranchRow[]): Promise<{ done: true } | { done: false; failed: boolean; error: string }> {
  for (const b of ops) {
    if (b.status === "succeed") continue;
    const o = await ctx.call(b);
    if (o.verdict !== "success") return { done: false, failed: o.verdict === "failure", error: describe(b, o) };
  }
  return { done: true };
}

export function describe(b: Pick<BranchRow, "branchId" | "op" | "method">, o: CallOutcome): string {
  return `branch ${b.branchId} ${b.op} ${b.method}: ${codeText(o.code)} ${o.message}`.trim();
}

function codeText(code: number): string {
  const names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];
  return names[code] ?? `code ${code}`;
}
