/**
 * Which branch call a participant is serving. The coordinator (and the SDK, for TCC Try calls)
 * sends it in request metadata; a barrier reads it from the handler's context.
 */
import { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "../../runtime/context";
import { RpcError, Status } from "../../runtime/errors";

/** Metadata keys of a branch call. */
export const TX_METADATA = {
  gid: "x-protomesh-tx-gid",
  branchId: "x-protomesh-tx-branch",
  op: "x-protomesh-tx-op",
  mode: "x-protomesh-tx-mode",
} as const;

/** try | confirm | cancel | action | compensate | notify | msg */
export type BarrierOp = "try" | "confirm" | "cancel" | "action" | "compensate" | "notify" | "msg";
const OPS: readonly BarrierOp[] = ["try", "confirm", "cancel", "action", "compensate", "notify", "msg"];

/** One branch call, as the barrier keys it. */
export interface BranchCall {
  readonly mode: string;
  readonly gid: string;
  readonly branchId: string;
  readonly op: BarrierOp;
}

/** Longest gid or branch id accepted (they become primary-key columns). */
export const MAX_ID_CHARS = 128;

/** Reads the branch call from a handler's context; INVALID_ARGUMENT when it was not called by a transaction. */
export function branchCallOf(ctx: Pick<CallContext, "metadata">): BranchCall {
  const get = (key: string) => {
    const v = ctx.metadata.get(key)[0];
    return typeof v === "string" ? v : "";
  };
  return checkBranchCall({ gid: get(TX_METADATA.gid), branchId: get(TX_METADATA.branchId), op: get(TX_METADATA.op) as BarrierOp, mode: get(TX_METADATA.mode) });
}

/** Validates a branch call built by hand. */
export function checkBranchCall(call: BranchCall): BranchCall {
  if (!call.gid || !call.branchId || !call.op) throw new RpcError(Status.INVALID_ARGUMENT, `not a transaction branch call: metadata ${TX_METADATA.gid}, ${TX_METADATA.branchId} and ${TX_METADATA.op} are required`);
  if (!OPS.includes(call.op)) throw new RpcError(Status.INVALID_ARGUMENT, `unknown branch op "${call.op}" (expected one of ${OPS.join(", ")})`);
  if (call.gid.length > MAX_ID_CHARS || call.branchId.length > MAX_ID_CHARS) throw new RpcError(Status.INVALID_ARGUMENT, `gid and branch id must be at most ${MAX_ID_CHARS} characters`);
  return call;
}

/** Metadata that marks a call as a branch call. */
export function branchMetadata(call: BranchCall, into: Metadata = new Metadata()): Metadata {
  into.set(TX_METADATA.gid, call.gid);
  into.set(TX_METADATA.branchId, call.branchId);
  into.set(TX_METADATA.op, call.op);
  into.set(TX_METADATA.mode, call.mode);
  return into;
}
