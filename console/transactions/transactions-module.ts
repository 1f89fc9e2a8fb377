/**
 * The Transactions page's API: the coordinator's own query and admin methods
 * (`List`, `Get`, `Retry`, `Stop` of `protomesh.transaction.v1.TxCoordinator`,
 * the ones `protomesh tx` calls), reached through the registry like any
 * client. The console never opens the coordinator's database: whatever store
 * the coordinator runs on, the page sees what `protomesh tx` sees, and a store
 * outage arrives as the coordinator's UNAVAILABLE with its cause. Retry and
 * stop are recorded in the audit log.
 */
// Answers carry every field, defaults included (proto JSON would drop them), so the page need not guess.
import type { Transaction } from "../../gen/protomesh/transaction/v1/coordinator";
import { TxCoordinatorDefinition, type TxCoordinatorClient } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import { createClient, type ClientHandle } from "../../runtime/client";
import { codeName, RpcError, Status } from "../../runtime/errors";
import type { AuditLog } from "../audit/audit-log";
import type { ServiceIndex } from "../services/service-index";
import { HttpError } from "../server/http-error";
import type { ConsoleModule, RouteContext } from "../server/route";

export interface TransactionsModuleDeps {
  /** The coordinator: `etcd:///<name>` (default `etcd:///protomesh-tx`) or `host:port`. */
  readonly coordinator: string;
  /** The registry the `etcd:///` target resolves through. */
  readonly discovery: unknown;
  readonly audit: AuditLog;
  /** The registry as the console sees it: an `etcd:///` coordinator with no instance is said at once, not after a deadline. */
  readonly services?: ServiceIndex;
  /** Deadline of each call to the coordinator (default 10 s). */
  readonly deadlineMs?: number;
}

export const TX_STATUSES = ["prepared", "submitted", "aborting", "succeed", "failed"] as const;
export const TX_MODES = ["tcc", "saga", "msg", "notify"] as const;
const UNFINISHED = ["prepared", "submitted", "aborting"] as const;
const GID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function transactionsModule(deps: TransactionsModuleDeps): ConsoleModule {
  let client: (TxCoordinatorClient & ClientHandle) | undefined;
  // Made on first use, so a console without a coordinator opens no channel for one.
  const co = () => (client ??= createClient(TxCoordinatorDefinition, deps.coordinator, { discovery: deps.discovery, defaultDeadlineMs: deps.deadlineMs ?? 10_000 }));

  const registered = /^etcd:\/\/\/(.+)$/.exec(deps.coordinator)?.[1];
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (registered && deps.services && !deps.services.summaries().some((s) => s.name === registered && s.instances > 0)) {
      throw new HttpError(503, `no transaction coordinator is registered as ${registered}: start one (protomesh tx-server) or start the console with --coordinator TARGET`);
    }
    try {
      return await fn();
    } catch (err) {
      throw httpErrorOf(RpcError.from(err), what, deps.coordinator);
    }
  };
  const gidOf = (ctx: RouteContext): string => {
    const gid = ctx.params.gid ?? "";
    if (!GID.test(gid)) throw new HttpError(400, `not a transaction id: ${JSON.stringify(gid)}`);
    return gid;
  };
  const act = (verb: "retry" | "stop") => async (ctx: RouteContext) => {
    const gid = gidOf(ctx);
    const before = await call(`get ${gid}`, () => co().get({ gid }));
    const after = await call(`${verb} ${gid}`, () => (verb === "retry" ? co().retry({ gid }) : co().stop({ gid })));
    await deps.audit.record({ who: ctx.actor.user, via: "console", action: `tx.${verb}`, target: `tx/${gid}`, before: brief(before), after: brief(after) });
    return { transaction: after };
  };

  return {
    name: "transactions",
    title: "Transactions",
    info: () => ({ coordinator: deps.coordinator, statuses: TX_STATUSES, modes: TX_MODES }),
    routes: [
      {
        method: "GET",
        path: "/api/transactions",
        role: "viewer",
        handler: async ({ query }) => {
          const status = query.get("status") ?? "";
          const mode = query.get("mode") ?? "";
          if (status && !(TX_STATUSES as readonly string[]).includes(status)) throw new HttpError(400, `status must be one of ${TX_STATUSES.join(", ")}`);
          if (mode && !(TX_MODES as readonly string[]).includes(mode)) throw new HttpError(400, `mode must be one of ${TX_MODES.join(", ")}`);
          const limit = Math.min(Math.max(1, Number(query.get("limit") ?? 50) || 50), 500);
          const { olderThanMs, unfinished } = ageOf(query);
          if (unfinished && status && !(UNFINISHED as readonly string[]).includes(status)) throw new HttpError(400, `status ${status} is final: unfinished lists only ${UNFINISHED.join(", ")}`);
          const r = await call("list", () => co().list({ status, mode, limit, page: query.get("page") ?? "", olderThanMs, unfinished }));
          return { transactions: r.transactions, nextPage: r.nextPage, coordinator: deps.coordinator };
        },
      },
      {
        method: "GET",
        path: "/api/transactions/:gid",
        role: "viewer",
        handler: async (ctx) => {
          const gid = gidOf(ctx);
          return { transaction: withoutPayloads(await call(`get ${gid}`, () => co().get({ gid }))) };
        },
      },
      { method: "POST", path: "/api/transactions/:gid/retry", role: "editor", handler: act("retry") },
      { method: "POST", path: "/api/transactions/:gid/stop", role: "editor", handler: act("stop") },
    ],
    async close() {
      client?.$close();
    },
  };
}

/**
 * `olderThanMs` (whole milliseconds: only transactions begun at least that long ago) and
 * `unfinished` (`1`/`true`: only prepared, submitted or aborting); together, the stuck view.
 */
function ageOf(query: URLSearchParams): { olderThanMs: number; unfinished: boolean } {
  const older = query.get("olderThanMs") ?? "";
  if (older && !(/^\d{1,15}$/.test(older))) throw new HttpError(400, `olderThanMs must be a whole number of milliseconds, got ${JSON.stringify(older.slice(0, 40))}`);
  const flag = query.get("unfinished") ?? "";
  if (!["", "0", "1", "false", "true"].includes(flag)) throw new HttpError(400, `unfinished must be 1 or 0, got ${JSON.stringify(flag.slice(0, 40))}`);
  return { olderThanMs: older ? Number(older) : 0, unfinished: flag === "1" || flag === "true" };
}

/** What the audit log keeps of a transaction: enough to see what the action changed. */
function brief(t: Transaction): Record<string, unknown> {
  return { status: t.status, rounds: t.rounds, lastError: t.lastError, branches: t.branches.map((b) => `${b.branchId} ${b.op} ${b.status} (${b.attempts} calls)`) };
}

/** A coordinator status as the page shows it: the status name, and who said it. */
function httpErrorOf(e: RpcError, what: string, coordinator: string): HttpError {
  const message = `the coordinator (${coordinator}) answered ${what} with ${codeName(e.code)}: ${e.rawMessage}`;
  switch (e.code) {
    case Status.NOT_FOUND:
      return new HttpError(404, message);
    case Status.INVALID_ARGUMENT:
      return new HttpError(400, message);
    case Status.FAILED_PRECONDITION:
    case Status.ABORTED:
    case Status.ALREADY_EXISTS:
      return new HttpError(409, message);
    default:
      // UNAVAILABLE (no coordinator registered, or its store is down), DEADLINE_EXCEEDED, INTERNAL: not the page's fault.
      return new HttpError(502, message, { code: codeName(e.code) });
  }
}

/**
 * A transaction as the page gets it. The coordinator's answer has a `payload` per branch (empty
 * unless asked for, and the page never asks); as a Buffer it would be JSON like
 * `{"type":"Buffer","data":[]}`, so the field is left out.
 */
function withoutPayloads<T extends { branches: ReadonlyArray<{ payload?: unknown }> }>(t: T): T {
  return { ...t, branches: t.branches.map(({ payload: _payload, ...rest }) => rest) };
}
