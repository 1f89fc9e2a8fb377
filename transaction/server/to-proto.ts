import type { DeepPartial } from "../../runtime/definition";
import type { Transaction } from "../../gen/protomesh/transaction/v1/coordinator";
import type { AttemptRow, BranchRow, GlobalRow } from "../store/types";

/**
 * A stored transaction as the API's `Transaction` message. Payloads (the encoded requests) are
 * left out, their size kept, unless `payloads` is asked for.
 */
export function toTransaction(g: GlobalRow, branches: readonly BranchRow[], attempts: readonly AttemptRow[], options: { payloads?: boolean } = {}): DeepPartial<Transaction> {
  return {
    gid: g.gid,
    mode: g.mode,
    status: g.status,
    options: { ...g.settings },
    owner: g.owner,
    createdAtMs: g.createdAt,
    updatedAtMs: g.updatedAt,
    nextAtMs: g.nextAt,
    timeoutAtMs: g.timeoutAt,
    rounds: g.rounds,
    lastError: g.lastError,
    queryTarget: g.queryTarget,
    finishedAtMs: g.finishedAt,
    branches: branches.map((b) => ({ branchId: b.branchId, op: b.op, target: b.target, method: b.method, status: b.status, attempts: b.attempts, lastError: b.lastError, updatedAtMs: b.updatedAt, payloadBytes: b.payload.length, after: b.after, ...(options.payloads ? { payload: Buffer.from(b.payload.buffer, b.payload.byteOffset, b.payload.byteLength) } : {}) })),
    attempts: attempts.map((a) => ({ branchId: a.branchId, op: a.op, atMs: a.at, code: a.code, error: a.error })),
  };
}
