/**
 * The TxCoordinator service: stores what callers ask for and hands work to the engine.
 * Store failures become UNAVAILABLE ("try again"), never a silent loss: a call that returned
 * OK is durable.
 */
import { RpcError, Status } from "../../runtime/errors";
import type { CallContext } from "../../runtime/context";
import type { DeepPartial } from "../../runtime/definition";
import type { TxCoordinatorHandlers } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import type { ListReply, SubmitReply, Transaction } from "../../gen/protomesh/transaction/v1/coordinator";
import type { Coordinator } from "../coordinator/coordinator";
import { leaseMs, resolveSettings } from "../coordinator/settings";
import { expiryOf } from "../coordinator/mode-notify";
import type { BranchRow, GlobalRow, TxSettings, TxStatus } from "../store/types";
import { TX_MODES, TX_STATUSES, UNFINISHED } from "../store/types";
import { bad, checkBranches, checkGid, checkMode } from "./validate";
import { toTransaction } from "./to-proto";
import { storeFailureText } from "../pg-errors";

export interface TxServiceOptions {
  /** Largest encoded request per branch (default 64 KiB). */
  maxPayloadBytes?: number;
}

export function txServiceHandlers(co: Coordinator, options: TxServiceOptions = {}): TxCoordinatorHandlers {
  const maxPayload = options.maxPayloadBytes ?? 64 * 1024;
  const store = co.store;

  const settingsOf = (o: Parameters<typeof resolveSettings>[0]): TxSettings => {
    try {
      return resolveSettings(o, co.defaults);
    } catch (err) {
      throw bad((err as Error).message);
    }
  };

  /**
   * Drives a transaction this instance just took, now; with `wait`, answers where the round got
   * to. The round moves `g.status` as it moves the stored one, so no read-back is needed.
   */
  const driveNow = async (g: GlobalRow, wait: boolean, branches?: BranchRow[]): Promise<DeepPartial<SubmitReply>> => {
    const p = co.drive(g, branches);
    if (!wait) return { gid: g.gid, status: g.status };
    const result = await p;
    if (result === undefined) {
      // The round failed on the store: answer what is stored, if the store answers.
      const after = await store.get(g.gid).catch(() => undefined);
      return { gid: g.gid, status: after?.status ?? g.status, lastError: after?.lastError ?? g.lastError };
    }
    return { gid: g.gid, status: g.status, lastError: result.kind === "final" ? g.lastError : result.error };
  };

  const mustGet = async (gid: string): Promise<GlobalRow> => {
    const g = await store.get(checkGid(gid));
    if (!g) throw new RpcError(Status.NOT_FOUND, `transaction ${gid} not found`);
    return g;
  };

  const handlers: TxCoordinatorHandlers = {
    async prepare(req) {
      const gid = checkGid(req.gid);
      const mode = checkMode(req.mode, ["tcc", "msg"]);
      const settings = settingsOf(req.options);
      const branches = mode === "msg" ? checkBranches(req.branches, ["action"], maxPayload) : checkBranches(req.branches, [], maxPayload);
      if (mode === "msg" && branches.length === 0) throw bad("a message needs at least one branch (its subscribers)");
      if (mode === "msg" && !req.queryTarget) throw bad("a message needs query_target: the producer serving TxProducer/QueryPrepared");
      const now = Date.now();
      const timeoutAt = now + settings.timeoutMs;
      const created = await store.create({ gid, mode, status: "prepared", settings, queryTarget: req.queryTarget, traceparent: req.traceparent, owner: co.id, nextAt: timeoutAt, timeoutAt }, branches);
      if (!created) throw new RpcError(Status.ALREADY_EXISTS, `transaction ${gid} exists already`);
      return { gid };
    },

    async registerBranch(req) {
      const gid = checkGid(req.gid);
      const ops = checkBranches(req.ops, ["confirm", "cancel"], maxPayload);
      const ids = new Set(ops.map((o) => o.branchId));
      if (ops.length !== 2 || ids.size !== 1) throw bad("register one branch: a confirm and a cancel op with the same branch_id");
      if (req.open) {
        // The TCC opens with its first branch, in one statement: from here on it times out and
        // cancels what was registered exactly as one opened by Prepare.
        const settings = settingsOf(req.options);
        const timeoutAt = Date.now() + settings.timeoutMs;
        const created = await store.create({ gid, mode: "tcc", status: "prepared", settings, queryTarget: "", traceparent: req.traceparent, owner: co.id, nextAt: timeoutAt, timeoutAt }, ops);
        if (!created) throw new RpcError(Status.ALREADY_EXISTS, `transaction ${gid} exists already`);
        return {};
      }
      let added: boolean;
      try {
        added = await store.addBranches(gid, { status: "prepared", mode: "tcc" }, ops);
      } catch (err) {
        if ((err as { code?: string }).code === "23505") throw new RpcError(Status.ALREADY_EXISTS, `transaction ${gid} has a branch ${ops[0]!.branchId} already`);
        throw err;
      }
      if (added) return {};
      // Only a refusal needs the stored transaction, to say why.
      const g = await mustGet(gid);
      if (g.mode !== "tcc") throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} is a ${g.mode}, not a TCC`);
      throw new RpcError(Status.ABORTED, `transaction ${g.gid} is no longer open for branches (status ${g.status})`);
    },

    async submit(req) {
      if (!req.mode) {
        // Commit of a prepared TCC or message: one conditional UPDATE; only a refusal reads the row.
        const gid = checkGid(req.gid);
        const g = await store.submitPrepared(gid, ["tcc", "msg"], Date.now());
        if (!g) {
          const cur = await mustGet(gid);
          if (cur.status === "submitted" || cur.status === "succeed") return { gid, status: cur.status };
          throw new RpcError(Status.ABORTED, `transaction ${gid} cannot be submitted: it is ${cur.status}${cur.lastError ? ` (${cur.lastError})` : ""}`);
        }
        // The first round gets the branches the commit read, when it could read them all (the commit counted the round).
        const { branches, ...row } = g;
        return driveNow({ ...row, owner: co.id }, req.wait, branches);
      }
      const gid = checkGid(req.gid);
      const mode = checkMode(req.mode, ["saga", "notify"]);
      const settings = settingsOf(req.options);
      const branches = checkBranches(req.branches, mode === "saga" ? ["action", "compensate"] : ["notify"], maxPayload);
      if (mode === "saga") {
        const actions = new Set(branches.filter((b) => b.op === "action").map((b) => b.branchId));
        if (actions.size === 0) throw bad("a saga needs at least one step");
        for (const b of branches) for (const a of b.after) if (!actions.has(a)) throw bad(`branch ${b.branchId} comes after "${a}", which is not a step of this saga`);
      }
      if (mode === "notify" && branches.length !== 1) throw bad("a notification has exactly one receiver (one notify op)");
      const now = Date.now();
      const lease = now + leaseMs(settings, 1);
      const g: GlobalRow = { gid, mode, status: "submitted", settings, queryTarget: "", traceparent: req.traceparent, owner: co.id, nextAt: lease, timeoutAt: now + settings.timeoutMs, rounds: 1, lastError: "", createdAt: now, updatedAt: now, finishedAt: 0 };
      // rounds starts at 1: this instance drives the first round itself, without a claim.
      if (!(await store.create(g, branches))) throw new RpcError(Status.ALREADY_EXISTS, `transaction ${gid} exists already`);
      // The first round gets the branches just written instead of reading them back.
      const rows: BranchRow[] = branches.map((b, seq) => ({ ...b, gid, seq, status: "prepared", attempts: 0, lastError: "", updatedAt: now }));
      return driveNow(g, req.wait, rows);
    },

    async abort(req) {
      const g = await mustGet(req.gid);
      if (g.status === "aborting" || g.status === "failed") return { gid: g.gid, status: g.status };
      const now = Date.now();
      const to: TxStatus = g.mode === "tcc" ? "aborting" : "failed";
      const reason = req.reason ? `aborted by the caller: ${req.reason}` : "aborted by the caller";
      // A TCC's Cancel round is driven here, without a claim: the move counts it (as a commit counts its first round).
      if (!(await store.setStatus(g.gid, ["prepared"], to, now, { lastError: reason, nextAt: now + leaseMs(g.settings, g.rounds + 1), countRound: to === "aborting" }))) {
        const cur = await store.get(g.gid);
        throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} cannot be aborted: it is ${cur?.status ?? "gone"}`);
      }
      if (to === "failed") return { gid: g.gid, status: "failed", lastError: reason };
      return driveNow({ ...g, status: "aborting", owner: co.id, rounds: g.rounds + 1 }, req.wait);
    },

    async get(req) {
      const g = await mustGet(req.gid);
      return toTransaction(g, await store.branches(g.gid), await store.attempts(g.gid, 200), { payloads: req.includePayloads });
    },

    async list(req) {
      if (req.status && !TX_STATUSES.includes(req.status as TxStatus)) throw bad(`status "${req.status}" is not one of ${TX_STATUSES.join(", ")}`);
      if (req.mode && !TX_MODES.includes(req.mode as GlobalRow["mode"])) throw bad(`mode "${req.mode}" is not one of ${TX_MODES.join(", ")}`);
      const limit = Math.min(Math.max(req.limit || 50, 1), 1000);
      let before: { createdAt: number; gid: string } | undefined;
      if (req.page) {
        const [at, ...rest] = req.page.split(":");
        if (!at || !/^\d+$/.test(at) || rest.length === 0) throw bad(`page "${req.page}" is not a page token from a previous reply`);
        before = { createdAt: Number(at), gid: rest.join(":") };
      }
      if (req.unfinished && req.status && !UNFINISHED.includes(req.status as TxStatus)) throw bad(`status "${req.status}" is final, and unfinished lists only ${UNFINISHED.join(", ")}`);
      // The cut is taken on this instance's clock, the clock that stamped created_at (instances keep theirs NTP-synced).
      // An age beyond the epoch matches nothing (-1), and stays inside Postgres' bigint.
      const createdAtOrBefore = req.olderThanMs > 0 ? Math.max(-1, Date.now() - req.olderThanMs) : undefined;
      const rows = await store.list({
        status: (req.status || undefined) as TxStatus | undefined,
        mode: (req.mode || undefined) as GlobalRow["mode"] | undefined,
        unfinished: req.unfinished,
        createdAtOrBefore,
        limit,
        before,
      });
      const last = rows.length === limit ? rows[rows.length - 1] : undefined;
      const reply: DeepPartial<ListReply> = { transactions: rows.map((g) => toTransaction(g, [], [])), nextPage: last ? `${last.createdAt}:${last.gid}` : "" };
      return reply;
    },

    async retry(req) {
      const g = await mustGet(req.gid);
      const now = Date.now();
      if (g.status === "succeed") throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} succeeded; nothing to retry`);
      if (g.mode === "notify" && now >= expiryOf(g)) {
        throw new RpcError(Status.FAILED_PRECONDITION, `notification ${g.gid} is past its maximum age (maxAgeMs ${g.settings.maxAgeMs}); it is not attempted any more: send a new one`);
      }
      if (g.status === "failed") {
        // Only a transaction that gave up mid-way goes back; one that finished rolling back is done.
        const back: TxStatus | undefined = g.lastError.startsWith("gave up") ? guessUnfinished(await store.branches(g.gid), g) : undefined;
        if (!back && g.lastError.startsWith("stopped by an operator")) {
          throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} was stopped by an operator; a stopped transaction is final: look at its branches by hand (tx show)`);
        }
        if (!back) throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} failed and finished rolling back; nothing to retry`);
        await store.resetRounds(g.gid, now);
        if (!(await store.setStatus(g.gid, ["failed"], back, now, { nextAt: now }))) throw new RpcError(Status.ABORTED, `transaction ${g.gid} changed meanwhile; try again`);
      } else {
        await store.resetRounds(g.gid, now);
        await store.reschedule(g.gid, now, g.lastError, now);
      }
      const claimed = await co.claim(g.gid, now);
      if (claimed) await co.drive(claimed);
      return handlers.get(req, undefined as unknown as CallContext) as Promise<DeepPartial<Transaction>>;
    },

    async stop(req) {
      const g = await mustGet(req.gid);
      if (!UNFINISHED.includes(g.status)) throw new RpcError(Status.FAILED_PRECONDITION, `transaction ${g.gid} is already ${g.status}`);
      const now = Date.now();
      if (!(await store.setStatus(g.gid, UNFINISHED, "failed", now, { lastError: `stopped by an operator (was ${g.status}); branches may need a manual look` }))) {
        throw new RpcError(Status.ABORTED, `transaction ${g.gid} finished meanwhile`);
      }
      return handlers.get(req, undefined as unknown as CallContext) as Promise<DeepPartial<Transaction>>;
    },
  };
  return withStoreErrors(handlers);
}

/** Where a transaction that gave up stood: forward while it has no failed or compensating progress. */
function guessUnfinished(branches: readonly { op: string; status: string; attempts: number }[], g: GlobalRow): TxStatus {
  if (g.mode === "msg" || g.mode === "notify") return "submitted";
  const movingBack = branches.some((b) => (b.op === "cancel" || b.op === "compensate") && b.attempts > 0) || branches.some((b) => b.status === "failed");
  return movingBack ? "aborting" : "submitted";
}

/**
 * Errors that are not RpcErrors come from the store: UNAVAILABLE (nothing was stored; try
 * again), with the cause in the message — unreachable, or up but refusing writes.
 */
function withStoreErrors(h: TxCoordinatorHandlers): TxCoordinatorHandlers {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(h) as Array<[string, (req: unknown, ctx: CallContext) => Promise<unknown>]>) {
    wrapped[name] = async (req: unknown, ctx: CallContext) => {
      try {
        return await fn(req, ctx);
      } catch (err) {
        if (err instanceof RpcError) throw err;
        throw new RpcError(Status.UNAVAILABLE, storeFailureText(err), undefined, { cause: err });
      }
    };
  }
  return wrapped as unknown as TxCoordinatorHandlers;
}
