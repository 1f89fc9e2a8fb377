/** Checks what callers send the coordinator; every failure is INVALID_ARGUMENT naming the field. */
import { RpcError, Status } from "../../runtime/errors";
import type { BranchSpec } from "../../gen/protomesh/transaction/v1/coordinator";
import { BRANCH_OPS, TX_MODES, type NewBranch, type TxMode } from "../store/types";
import { MAX_ID_CHARS } from "../barrier/call-info";

const GID = /^[A-Za-z0-9_.:\-]+$/;
const BRANCH_ID = /^[A-Za-z0-9_.\-]+$/;
const METHOD = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

/** Most branch ops in one transaction. */
export const MAX_BRANCHES = 200;

export function bad(message: string): RpcError {
  return new RpcError(Status.INVALID_ARGUMENT, message);
}

export function checkGid(gid: string): string {
  if (!gid) throw bad("gid is required");
  if (gid.length > MAX_ID_CHARS || !GID.test(gid)) throw bad(`gid "${gid.slice(0, 40)}" must be 1–${MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . : -`);
  return gid;
}

export function checkMode(mode: string, allowed: readonly TxMode[]): TxMode {
  if (!TX_MODES.includes(mode as TxMode) || !allowed.includes(mode as TxMode)) throw bad(`mode "${mode}" is not one of ${allowed.join(", ")}`);
  return mode as TxMode;
}

/** Validates branch specs; `ops` limits which ops may appear. */
export function checkBranches(specs: readonly BranchSpec[], ops: readonly string[], maxPayloadBytes: number): NewBranch[] {
  if (specs.length > MAX_BRANCHES) throw bad(`at most ${MAX_BRANCHES} branch ops per transaction, got ${specs.length}`);
  const seen = new Set<string>();
  return specs.map((s, i) => {
    const where = `branches[${i}]`;
    if (!s.branchId || s.branchId.length > MAX_ID_CHARS || !BRANCH_ID.test(s.branchId)) throw bad(`${where}.branch_id "${s.branchId}" must be 1–${MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . -`);
    if (!BRANCH_OPS.includes(s.op as NewBranch["op"]) || !ops.includes(s.op)) throw bad(`${where}.op "${s.op}" must be one of ${ops.join(", ")}`);
    if (!s.target || s.target.length > 512) throw bad(`${where}.target is required (etcd:///service or host:port)`);
    if (!METHOD.test(s.method)) throw bad(`${where}.method "${s.method}" is not a gRPC path like /package.Service/Method`);
    if (s.payload.length > maxPayloadBytes) throw bad(`${where}.payload is ${s.payload.length} bytes, over the ${maxPayloadBytes}-byte limit`);
    const key = `${s.branchId}/${s.op}`;
    if (seen.has(key)) throw bad(`${where}: branch ${s.branchId} has two ${s.op} ops`);
    seen.add(key);
    return { branchId: s.branchId, op: s.op as NewBranch["op"], target: s.target, method: s.method, payload: s.payload, after: [...s.after] };
  });
}
