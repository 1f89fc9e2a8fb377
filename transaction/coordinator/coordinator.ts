/**
 * The coordinator engine: drives stored transactions to a final state. There is no leader:
 * every instance polls the store for due transactions and claims each with a compare-and-set
 * on (next_at), which both takes it and pushes its next_at forward by the retry backoff —
 * the lease. An instance that dies mid-round simply lets the lease run out; another (or the
 * restarted one) claims the transaction and repeats the round, and the participants' barriers
 * make the repeated calls harmless.
 */
import { randomBytes } from "node:crypto";
import type { Registry } from "prom-client";
import { getLogger, type Logger } from "../../runtime/logger";
import { Status } from "../../runtime/errors";
import { QueryPreparedRequest } from "../../gen/protomesh/transaction/v1/coordinator";
import type { BranchRow, GlobalRow, SucceededCall, TxMode, TxSettings, TxStatus, TxStore } from "../store/types";
import { UNFINISHED } from "../store/types";
import { MSG_BRANCH } from "../barrier/barrier";
import { refusesWrites } from "../pg-errors";
import { alertSender, type AlertOptions, type TxAlert } from "./alerts";
import { BranchCaller, verdictOf, type BranchCallerOptions } from "./branch-caller";
import { backoffMs, DEFAULT_SETTINGS, leaseMs } from "./settings";
import { txMetrics, type TxMetrics } from "./tx-metrics";
import type { CallOutcome, Mode, RoundContext, RoundResult } from "./round";
import { tccMode } from "./mode-tcc";
import { sagaMode } from "./mode-saga";
import { msgMode } from "./mode-msg";
import { notifyMode } from "./mode-notify";

const MODES: Record<TxMode, Mode> = { tcc: tccMode, saga: sagaMode, msg: msgMode, notify: notifyMode };

/** Path of the producer's query-back method. */
export const QUERY_PREPARED_METHOD = "/protomesh.transaction.v1.TxProducer/QueryPrepared";

export interface CoordinatorOptions extends AlertOptions, BranchCallerOptions {
  /** This instance's name in `owner` (default: a random id). */
  instanceId?: string;
  /** How often to look for due transactions (default 1 s). */
  pollIntervalMs?: number;
  /** Most transactions driven at once by this instance (default 64). */
  maxConcurrentRounds?: number;
  /** Settings of transactions that do not set their own. */
  defaults?: Partial<TxSettings>;
  logger?: Logger;
  /** Where `protomesh_tx_*` metrics go (default protomesh's registry). */
  metricsRegistry?: Registry;
}

export class Coordinator {
  readonly id: string;
  readonly defaults: TxSettings;
  private readonly logger: Logger;
  private readonly caller: BranchCaller;
  private readonly metrics: TxMetrics;
  private readonly alert: (a: TxAlert) => void;
  private readonly alertEvery: number;
  private readonly pollMs: number;
  private readonly maxRounds: number;
  private readonly running = new Map<string, Promise<RoundResult | undefined>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;
  private storeDown = false;

  constructor(
    readonly store: TxStore,
    options: CoordinatorOptions = {},
  ) {
    this.id = options.instanceId ?? `tx-${randomBytes(4).toString("hex")}`;
    this.defaults = { ...DEFAULT_SETTINGS, ...options.defaults };
    this.logger = (options.logger ?? getLogger()).child({ component: "tx-coordinator", instance: this.id });
    this.caller = new BranchCaller(options);
    this.metrics = txMetrics(options.metricsRegistry);
    this.alert = alertSender(options, this.logger);
    this.alertEvery = Math.max(1, options.alertAfterAttempts ?? 3);
    this.pollMs = options.pollIntervalMs ?? 1000;
    this.maxRounds = options.maxConcurrentRounds ?? 64;
  }

  /** Starts polling for due transactions. */
  start(): void {
    if (this.timer || this.stopped) return;
    const tick = () => {
      this.timer = setTimeout(() => void this.poll().finally(() => !this.stopped && tick()), this.pollMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops polling and waits for rounds in progress (their transactions stay claimed until the lease runs out). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.running.values()]);
    this.caller.close();
  }

  /** One pass: claim what is due (up to the free capacity) and drive it. Resolves when the claims are made. */
  async poll(): Promise<number> {
    if (this.polling || this.stopped) return 0;
    this.polling = true;
    try {
      const room = this.maxRounds - this.running.size;
      if (room <= 0) return 0;
      const now = Date.now();
      const due = await this.store.due(now, room * 2);
      let claimed = 0;
      for (const d of due) {
        if (claimed >= room || this.stopped) break;
        if (this.running.has(d.gid)) continue;
        const row = await this.claim(d.gid, d.nextAt);
        if (!row) continue;
        claimed++;
        void this.drive(row);
      }
      // Only after the claims (writes): a store that answers reads but refuses writes is not back.
      if (this.storeDown) {
        this.storeDown = false;
        this.logger.info("transaction store reachable again");
      }
      return claimed;
    } catch (err) {
      if (!this.storeDown) this.logger.warn(refusesWrites(err) ? "transaction store refuses writes; retrying" : "transaction store unreachable; retrying", { error: String(err) });
      this.storeDown = true;
      return 0;
    } finally {
      this.polling = false;
    }
  }

  /** Claims `gid` if its next_at is still `expectedNextAt`. */
  async claim(gid: string, expectedNextAt: number): Promise<GlobalRow | undefined> {
    const current = await this.store.get(gid);
    if (!current) return undefined;
    const now = Date.now();
    return this.store.claim(gid, expectedNextAt, this.id, now + leaseMs(current.settings, current.rounds + 1), now);
  }

  /**
   * Drives one claimed transaction for one round. Resolves with the round's result (undefined
   * when the store failed; the lease then brings it back).
   */
  drive(row: GlobalRow, branches?: BranchRow[]): Promise<RoundResult | undefined> {
    const existing = this.running.get(row.gid);
    if (existing) return existing;
    const p = this.round(row, branches).finally(() => this.running.delete(row.gid));
    this.running.set(row.gid, p);
    return p;
  }

  private async round(g: GlobalRow, known?: BranchRow[]): Promise<RoundResult | undefined> {
    this.metrics.rounds.inc({ mode: g.mode });
    // Successful calls of this round, recorded with the status move or reschedule that ends it.
    const succeeded: SucceededCall[] = [];
    try {
      const branches = known ?? (await this.store.branches(g.gid));
      const ctx = this.context(g, branches, succeeded);
      const result = await MODES[g.mode].round(ctx);
      await this.after(g, result, succeeded);
      return result;
    } catch (err) {
      this.logger.warn("transaction round failed; it will be retried", { gid: g.gid, error: String(err) });
      return undefined;
    }
  }

  private async after(g: GlobalRow, result: RoundResult, succeeded: SucceededCall[]): Promise<void> {
    const now = Date.now();
    if (result.kind === "final") {
      // Calls not recorded by a move (the round ended on a move another instance made first).
      for (const c of succeeded.splice(0)) await this.store.recordCall({ gid: g.gid, branchId: c.branchId, op: c.op }, { status: "succeed", code: 0, error: "", at: c.at, log: false });
      // `g.status` is final only when this round made it so (the moves update it).
      if (!UNFINISHED.includes(g.status)) {
        this.metrics.finished.inc({ mode: g.mode, status: g.status });
        this.metrics.duration.observe({ mode: g.mode, status: g.status }, (now - g.createdAt) / 1000);
      }
      if (result.gaveUp) this.alert({ kind: "gave-up", gid: g.gid, mode: g.mode, status: g.status, attempts: result.gaveUp.attempts, lastError: result.gaveUp.error, at: now });
      return;
    }
    const calls = succeeded.splice(0);
    if (result.kind === "retry" && g.settings.retryLimit > 0 && g.rounds >= g.settings.retryLimit) {
      // A saga that cannot move forward rolls back instead (with a fresh retry budget); only a
      // transaction that cannot finish rolling back, confirming or delivering gives up.
      if (g.mode === "saga" && g.status === "submitted") {
        const why = `retry limit reached moving forward, rolling back: ${result.error}`;
        if (await this.store.setStatus(g.gid, ["submitted"], "aborting", now, { lastError: why, nextAt: now, calls })) await this.store.resetRounds(g.gid, now);
        return;
      }
      const error = `gave up after ${g.rounds} rounds (retry limit): ${result.error}`;
      if (await this.store.setStatus(g.gid, UNFINISHED, "failed", now, { lastError: error, calls })) {
        this.metrics.finished.inc({ mode: g.mode, status: "failed" });
        this.alert({ kind: "gave-up", gid: g.gid, mode: g.mode, status: "failed", attempts: g.rounds, lastError: error, at: now });
      }
      return;
    }
    const at = result.kind === "wait" ? result.at : now + backoffMs(g.settings, g.rounds);
    await this.store.reschedule(g.gid, at, result.error, now, calls);
  }

  private context(g: GlobalRow, branches: BranchRow[], succeeded: SucceededCall[]): RoundContext {
    return {
      global: g,
      branches,
      now: () => Date.now(),
      call: (b) => this.callBranch(g, b, succeeded),
      queryPrepared: async () => {
        const payload = QueryPreparedRequest.encode({ gid: g.gid }).finish();
        const a = await this.caller.call(g.queryTarget, QUERY_PREPARED_METHOD, payload, { mode: "msg", gid: g.gid, branchId: MSG_BRANCH, op: "msg" }, g.settings.requestTimeoutMs, g.traceparent);
        return { verdict: verdictOf(a.code), code: a.code, message: a.message };
      },
      move: async (from, to, lastError) => {
        const ok = await this.store.setStatus(g.gid, from, to, Date.now(), { lastError, calls: succeeded.splice(0) });
        if (ok) {
          (g as { status: TxStatus }).status = to;
          if (lastError !== undefined) (g as { lastError: string }).lastError = lastError;
        }
        return ok;
      },
    };
  }

  private async callBranch(g: GlobalRow, b: BranchRow, succeeded: SucceededCall[]): Promise<CallOutcome> {
    const started = process.hrtime.bigint();
    const a = await this.caller.call(b.target, b.method, b.payload, { mode: g.mode, gid: g.gid, branchId: b.branchId, op: b.op }, g.settings.requestTimeoutMs, g.traceparent);
    this.metrics.branchSeconds.observe({ op: b.op }, Number(process.hrtime.bigint() - started) / 1e9);
    let verdict = verdictOf(a.code);
    // Confirm, Cancel, compensations and message deliveries may not fail: a refusal is retried.
    if (verdict === "failure" && b.op !== "try" && b.op !== "action" && b.op !== "notify") verdict = "retry";
    if (verdict === "failure" && b.op === "action" && g.mode === "msg") verdict = "retry";
    this.metrics.branchCalls.inc({ op: b.op, verdict });
    const at = Date.now();
    const status = verdict === "success" ? "succeed" : verdict === "failure" ? "failed" : "prepared";
    const log = verdict !== "success" || g.mode === "notify";
    if (log) await this.store.recordCall(b, { status, code: a.code, error: a.message, at, log });
    else succeeded.push({ branchId: b.branchId, op: b.op, at });
    b.attempts++;
    b.status = status;
    b.lastError = a.message;
    if (verdict === "retry" && b.attempts % this.alertEvery === 0) {
      this.alert({ kind: "branch-failing", gid: g.gid, mode: g.mode, status: g.status, branchId: b.branchId, op: b.op, method: b.method, attempts: b.attempts, lastError: a.message, at });
    }
    return { verdict, code: a.code, message: a.message };
  }
}

/** A code that says the store (not the request) failed. */
export const STORE_UNAVAILABLE = Status.UNAVAILABLE;
