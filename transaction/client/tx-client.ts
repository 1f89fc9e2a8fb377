/**
 * The caller's side: open TCC transactions, build sagas, send reliable messages and
 * notifications, typed from the participants' generated definitions.
 *
 * @example
 *   const tx = createTxClient();                          // etcd:///protomesh-tx
 *   const a = participant(AccountDefinition, "etcd:///bank-a");
 *   await tx.tcc(async (t) => {
 *     await t.call(a, "debit", { account: "alice", amount: 10 });   // TryDebit now; ConfirmDebit or CancelDebit later
 *   });
 */
import { randomUUID } from "node:crypto";
import { context, propagation } from "@opentelemetry/api";
import { createClient, type ClientHandle, type ClientOptions } from "../../runtime/client";
import { Status } from "../../runtime/errors";
// Branch targets and the coordinator are usually `etcd:///…`: make sure grpc-js knows the scheme.
import "../../registry/etcd/register";
import type { DeepPartial } from "../../runtime/definition";
import { TxCoordinatorDefinition, type TxCoordinatorClient } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import type { BranchSpec, Transaction, TxOptions } from "../../gen/protomesh/transaction/v1/coordinator";
import { branchMetadata } from "../barrier/call-info";
import type { Barrier } from "../barrier/barrier";
import { DEFAULT_TX_SERVICE } from "../server/tx-server";
import { tccMethods, type Participant, type RequestOf, type ResponseOf, type SameRequest, type TccName, type UnaryName } from "./participant";

export type TxOptionsInput = Partial<TxOptions>;

/** A transaction's status as the coordinator answered. */
export interface TxOutcome {
  readonly gid: string;
  /** `succeed`/`failed` when final; `submitted`/`aborting` when it is still being driven (retries pending). */
  readonly status: string;
  readonly lastError: string;
}

/** What `notification` reads back: the request a notification's receiver is called with. */
export interface NotificationRequest<T> {
  readonly gid: string;
  /** Where the notification stands (`submitted` while attempts remain). */
  readonly status: string;
  /** The receiver's method, `/package.Service/Method`. */
  readonly method: string;
  /** The request, decoded by the caller's `decode`. */
  readonly request: T;
  /** Calls made to the receiver so far. */
  readonly attempts: number;
}

/** A transaction ended `failed`, or could not start. */
export class TxFailedError extends Error {
  override readonly name = "TxFailedError";
  constructor(
    readonly gid: string,
    readonly status: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Whether a reliable message's local transaction committed is unknown (its COMMIT was sent and
 * the answer was lost). Do not redo the business change: the coordinator settles the message by
 * query-back, delivering it if the change committed; `tx.get(gid)` shows the outcome.
 */
export class TxOutcomeUnknownError extends Error {
  override readonly name = "TxOutcomeUnknownError";
  constructor(
    readonly gid: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface TxClientOptions {
  /** Where the coordinator runs (default `etcd:///protomesh-tx`). */
  coordinator?: string;
  /** Options of the client to the coordinator. */
  client?: ClientOptions;
  /** Settings for every transaction (each call may override). */
  defaults?: TxOptionsInput;
  /** Deadline of each call to the coordinator (default 10 s). */
  deadlineMs?: number;
}

export interface TccBranches {
  readonly gid: string;
  /**
   * Registers a branch (its Confirm and Cancel with the coordinator), then calls its Try and
   * returns the Try's answer. A Try that throws aborts the transaction (every registered
   * branch is cancelled) unless you catch it.
   */
  call<C, N extends TccName<C>>(p: Participant<C>, name: N, request: RequestOf<C, `try${Capitalize<N>}`>): Promise<ResponseOf<C, `try${Capitalize<N>}`>>;
}

export interface SagaStepOptions {
  /** With `concurrent`: indexes (0-based) of steps whose actions must succeed first. */
  after?: number[];
}

export interface Saga {
  readonly gid: string;
  /** Adds a step: `action` forward, `compensate` (same request type) to undo it. */
  step<C, A extends UnaryName<C>>(p: Participant<C>, action: A, compensate: SameRequest<C, A>, request: RequestOf<C, A>, options?: SagaStepOptions): Saga;
  /** Stores the saga and starts it; with `wait` (default true) resolves once a round has run. */
  submit(options?: { wait?: boolean }): Promise<TxOutcome>;
}

export interface Message {
  readonly gid: string;
  /** Adds a subscriber call, delivered at least once after the producer commits. */
  add<C, M extends UnaryName<C>>(p: Participant<C>, method: M, request: RequestOf<C, M>): Message;
  /**
   * Prepares the message, runs `local` in the producer's database guarded by `barrier` (the
   * barrier row is what a query-back finds), then submits. If `local` throws (or the local
   * transaction fails before its COMMIT), the message is dropped and the error rethrown. If the
   * COMMIT itself fails, it may have committed: the message stays prepared, this rejects with
   * `TxOutcomeUnknownError`, and the coordinator settles it by query-back after the timeout — as
   * it does when this process dies in between: it asks `producer` (serving TxProducer) and gets
   * a definite answer. If the local transaction committed but the Submit fails (the
   * coordinator is down or unreachable), this rejects with `TxOutcomeUnknownError` too: the
   * message is prepared, and the query-back delivers it.
   */
  commit<Tx, T>(barrier: Barrier<Tx>, local: (tx: Tx) => Promise<T>, options?: { wait?: boolean }): Promise<{ value: T; outcome: TxOutcome }>;
}

export interface TxClient {
  /** Runs `body` as the Try phase of a TCC transaction, then submits (or aborts when it throws). */
  tcc<T>(body: (t: TccBranches) => Promise<T>, options?: TxOptionsInput & { gid?: string; wait?: boolean }): Promise<{ value: T; outcome: TxOutcome }>;
  saga(options?: TxOptionsInput & { gid?: string }): Saga;
  /** A reliable message; `producer` is the target serving TxProducer/QueryPrepared for it. */
  message(producer: string, options?: TxOptionsInput & { gid?: string }): Message;
  /** Best-effort notification of one receiver on the `scheduleMs` retry schedule (and up to `maxAgeMs` old). */
  notify<C, M extends UnaryName<C>>(p: Participant<C>, method: M, request: RequestOf<C, M>, options?: TxOptionsInput & { gid?: string; wait?: boolean }): Promise<TxOutcome>;
  /**
   * The original request of a notification, for its receiver: the gid comes with every call it
   * gets (`branchCallOf(ctx).gid`, metadata `x-protomesh-tx-gid`). The coordinator keeps the
   * request as the sender encoded it, the wire bytes of the method's request message; `decode`
   * is the receiver's own generated type (`TransferNotice.decode`, or the method definition's
   * `requestDeserialize`).
   */
  notification<T>(gid: string, decode: (bytes: Buffer) => T): Promise<NotificationRequest<T>>;
  /** A transaction with its branches and recorded attempts; with `payloads`, each branch's encoded request too. */
  get(gid: string, options?: { payloads?: boolean }): Promise<Transaction>;
  /** The client to the coordinator, for the query API (`list`, `retry`, `stop`). */
  readonly coordinator: TxCoordinatorClient & ClientHandle;
  close(): void;
}

/** A new global transaction id: sortable by time, unique without coordination. */
export function newGid(): string {
  return `${Date.now().toString(36)}-${randomUUID().replace(/-/g, "").slice(0, 16)}`;
}

function traceparent(): string {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? "";
}

function branchId(i: number): string {
  return String(i + 1).padStart(2, "0");
}

export function createTxClient(options: TxClientOptions = {}): TxClient {
  const target = options.coordinator ?? `etcd:///${DEFAULT_TX_SERVICE}`;
  const co = createClient(TxCoordinatorDefinition, target, { defaultDeadlineMs: options.deadlineMs ?? 10_000, ...options.client });
  const merge = (o?: TxOptionsInput): DeepPartial<TxOptions> => ({ ...options.defaults, ...stripExtra(o) });

  const outcomeOf = (r: { gid: string; status: string; lastError: string }): TxOutcome => ({ gid: r.gid, status: r.status, lastError: r.lastError });

  return {
    coordinator: co,
    close: () => co.$close(),
    get: (gid, go = {}) => co.get({ gid, includePayloads: go.payloads ?? false }),

    async notification(gid, decode) {
      const t = await co.get({ gid, includePayloads: true });
      const b = t.mode === "notify" ? t.branches.find((x) => x.op === "notify") : undefined;
      if (!b) throw new TypeError(`transaction ${gid} is a ${t.mode}, not a notification`);
      const bytes = Buffer.from(b.payload.buffer, b.payload.byteOffset, b.payload.byteLength);
      return { gid, status: t.status, method: b.method, request: decode(bytes), attempts: b.attempts };
    },

    async tcc(body, o = {}) {
      const gid = o.gid ?? newGid();
      // The first branch registration opens the transaction (no Prepare call of its own);
      // branches called meanwhile wait for it, then register into it.
      let opening: Promise<unknown> | undefined;
      // Whether the transaction may exist now (so a failure must abort it).
      let mayExist = false;
      let n = 0;
      const t: TccBranches = {
        gid,
        async call(p, name, request) {
          const names = tccMethods(name);
          // Confirm and Cancel are sent the Try's request: they must take its type.
          const tryM = p.method(names.try);
          const confirmM = p.method(names.confirm, tryM);
          const cancelM = p.method(names.cancel, tryM);
          const id = branchId(n++);
          const ops = [
            { branchId: id, op: "confirm", target: p.target, method: confirmM.path, payload: confirmM.requestSerialize(request as never) },
            { branchId: id, op: "cancel", target: p.target, method: cancelM.path, payload: cancelM.requestSerialize(request as never) },
          ];
          if (!opening) {
            mayExist = true;
            opening = co.registerBranch({ gid, ops, open: true, options: merge(o), traceparent: traceparent() }).catch((err: unknown) => {
              // Refused outright: nothing was stored (or the gid is someone else's), so nothing to abort.
              const code = (err as { code?: number }).code;
              if (code === Status.ALREADY_EXISTS || code === Status.INVALID_ARGUMENT) mayExist = false;
              throw err;
            });
            await opening;
          } else {
            await opening;
            await co.registerBranch({ gid, ops });
          }
          const client = p.client() as unknown as Record<string, (r: unknown, opts: object) => Promise<unknown>>;
          return client[names.try]!(request, { metadata: branchMetadata({ mode: "tcc", gid, branchId: id, op: "try" }) }) as Promise<never>;
        },
      };
      let value: Awaited<ReturnType<typeof body>>;
      try {
        value = await body(t);
      } catch (err) {
        if (mayExist) await co.abort({ gid, reason: err instanceof Error ? err.message.slice(0, 500) : String(err), wait: o.wait ?? true }).catch(() => undefined);
        throw err;
      }
      // No branch: the transaction is opened now, only to be committed (it has nothing to confirm).
      if (!opening) await co.prepare({ gid, mode: "tcc", options: merge(o), traceparent: traceparent() });
      const r = await co.submit({ gid, wait: o.wait ?? true });
      return { value, outcome: outcomeOf(r) };
    },

    saga(o = {}) {
      const gid = o.gid ?? newGid();
      const specs: DeepPartial<BranchSpec>[] = [];
      let steps = 0;
      const saga: Saga = {
        gid,
        step(p, action, compensate, request, so = {}) {
          const a = p.method(action);
          // The compensation is sent the action's request: it must take its type.
          const c = p.method(compensate, a);
          const id = branchId(steps++);
          const after = (so.after ?? []).map((i) => {
            if (!Number.isInteger(i) || i < 0 || i >= steps - 1) throw new TypeError(`saga step ${steps - 1}: after must name earlier steps (0..${steps - 2}), got ${i}`);
            return branchId(i);
          });
          specs.push({ branchId: id, op: "action", target: p.target, method: a.path, payload: a.requestSerialize(request as never), after });
          specs.push({ branchId: id, op: "compensate", target: p.target, method: c.path, payload: c.requestSerialize(request as never) });
          return saga;
        },
        async submit(so = {}) {
          const r = await co.submit({ gid, mode: "saga", options: merge(o), branches: specs, wait: so.wait ?? true, traceparent: traceparent() });
          return outcomeOf(r);
        },
      };
      return saga;
    },

    message(producer, o = {}) {
      const gid = o.gid ?? newGid();
      const specs: DeepPartial<BranchSpec>[] = [];
      const msg: Message = {
        gid,
        add(p, method, request) {
          const m = p.method(method);
          specs.push({ branchId: branchId(specs.length), op: "action", target: p.target, method: m.path, payload: m.requestSerialize(request as never) });
          return msg;
        },
        async commit(barrier, local, co2 = {}) {
          await co.prepare({ gid, mode: "msg", options: merge(o), queryTarget: producer, branches: specs, traceparent: traceparent() });
          // Whether `local` resolved: from then on the driver sends COMMIT, and an error may come
          // after the database committed (the connection dropped before the answer came back).
          let businessDone = false;
          let value;
          try {
            value = await barrier.prepareMessage(gid, async (tx) => {
              const v = await local(tx);
              businessDone = true;
              return v;
            });
          } catch (err) {
            if (businessDone) {
              // The outcome is unknown here: leave the message prepared. After its timeout the
              // coordinator asks the producer, whose barrier row (or its absence) decides.
              throw new TxOutcomeUnknownError(gid, `message ${gid}: the local transaction's COMMIT failed, so whether it committed is unknown; the message stays prepared and the coordinator settles it by query-back to ${producer} after its timeout (delivered if it committed, dropped if not): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
            }
            // Definitely not committed: the business code threw, or the transaction never reached
            // COMMIT (no connection, or a query-back already rolled the message back).
            await co.abort({ gid, reason: err instanceof Error ? err.message.slice(0, 500) : String(err) }).catch(() => undefined);
            throw err;
          }
          // If this submit is lost, the coordinator's query-back finds the committed barrier row.
          let r;
          try {
            r = await co.submit({ gid, wait: co2.wait ?? false });
          } catch (err) {
            // ABORTED is the coordinator's definite answer (the message is final, e.g. stopped by an operator).
            if ((err as { code?: number }).code === Status.ABORTED) throw err;
            // Otherwise the local transaction committed and only the Submit failed (coordinator
            // down or unreachable, or its answer lost): the message stays prepared, or was submitted.
            throw new TxOutcomeUnknownError(gid, `message ${gid}: the local transaction committed but the Submit to the coordinator failed; the message is prepared and the coordinator settles it by query-back to ${producer} after its timeout (it will be delivered; do not send it again): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
          }
          return { value, outcome: outcomeOf(r) };
        },
      };
      return msg;
    },

    async notify(p, method, request, o = {}) {
      const m = p.method(method);
      const gid = o.gid ?? newGid();
      const r = await co.submit({
        gid,
        mode: "notify",
        options: merge(o),
        branches: [{ branchId: "01", op: "notify", target: p.target, method: m.path, payload: m.requestSerialize(request as never) }],
        wait: o.wait ?? false,
        traceparent: traceparent(),
      });
      return outcomeOf(r);
    },
  };
}

function stripExtra(o: (TxOptionsInput & { gid?: string; wait?: boolean }) | undefined): TxOptionsInput {
  if (!o) return {};
  const { gid: _g, wait: _w, ...rest } = o;
  return rest;
}

/** Throws TxFailedError unless the outcome is `succeed`. */
export function expectSucceeded(outcome: TxOutcome): TxOutcome {
  if (outcome.status !== "succeed") throw new TxFailedError(outcome.gid, outcome.status, `transaction ${outcome.gid} is ${outcome.status}${outcome.lastError ? `: ${outcome.lastError}` : ""}`);
  return outcome;
}

