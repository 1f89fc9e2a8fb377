import type { TxOptions } from "../../gen/protomesh/transaction/v1/coordinator";
import type { TxSettings } from "../store/types";

/**
 * Default settings of a transaction. Timeout and retry follow DTM's long-tested defaults (35 s
 * to fail a transaction that never committed; 10 s between retries, doubling); the notification
 * schedule is the documented best-effort one.
 */
export const DEFAULT_SETTINGS: TxSettings = {
  timeoutMs: 35_000,
  retryIntervalMs: 10_000,
  maxRetryIntervalMs: 600_000,
  retryLimit: 0,
  requestTimeoutMs: 3_000,
  concurrent: false,
  /** 1 s, 5 s, 30 s, 1 min, 5 min, 30 min, 1 h, 2 h, 6 h: the notification fails after the ninth retry (~10 h). */
  scheduleMs: [1_000, 5_000, 30_000, 60_000, 300_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000],
  /** No age limit: the schedule alone decides when a notification gives up. */
  maxAgeMs: 0,
};

/** Longest timeout accepted (a week): a prepared transaction must not outlive anyone's memory of it. */
const MAX_TIMEOUT_MS = 7 * 24 * 3600_000;

/** Fills `options` from `defaults`, checking ranges. Throws a message naming the bad field. */
export function resolveSettings(options: Partial<TxOptions> | undefined, defaults: TxSettings): TxSettings {
  const pick = (v: number | undefined, d: number) => (v === undefined || v === 0 ? d : v);
  const s: TxSettings = {
    timeoutMs: pick(options?.timeoutMs, defaults.timeoutMs),
    retryIntervalMs: pick(options?.retryIntervalMs, defaults.retryIntervalMs),
    maxRetryIntervalMs: pick(options?.maxRetryIntervalMs, defaults.maxRetryIntervalMs),
    retryLimit: pick(options?.retryLimit, defaults.retryLimit),
    requestTimeoutMs: pick(options?.requestTimeoutMs, defaults.requestTimeoutMs),
    concurrent: options?.concurrent ?? defaults.concurrent,
    scheduleMs: options?.scheduleMs && options.scheduleMs.length > 0 ? [...options.scheduleMs] : [...defaults.scheduleMs],
    maxAgeMs: pick(options?.maxAgeMs, defaults.maxAgeMs),
  };
  if (s.timeoutMs > MAX_TIMEOUT_MS) throw new Error(`timeoutMs ${s.timeoutMs} is over the limit of ${MAX_TIMEOUT_MS} ms`);
  if (s.retryIntervalMs < 10) throw new Error(`retryIntervalMs must be at least 10 ms, got ${s.retryIntervalMs}`);
  if (s.maxRetryIntervalMs < s.retryIntervalMs) s.maxRetryIntervalMs = s.retryIntervalMs;
  if (s.requestTimeoutMs < 10) throw new Error(`requestTimeoutMs must be at least 10 ms, got ${s.requestTimeoutMs}`);
  if (s.scheduleMs.length > 100 || s.scheduleMs.some((ms) => ms < 10)) throw new Error("scheduleMs takes at most 100 waits of at least 10 ms each");
  if (s.maxAgeMs !== 0 && s.maxAgeMs < 10) throw new Error(`maxAgeMs must be 0 (no limit) or at least 10 ms, got ${s.maxAgeMs}`);
  return s;
}

/** Wait before round `round + 1` (rounds count from 1): the interval doubled per round, capped. */
export function backoffMs(settings: TxSettings, round: number): number {
  const exp = Math.min(Math.max(round - 1, 0), 30);
  return Math.min(settings.retryIntervalMs * 2 ** exp, settings.maxRetryIntervalMs);
}

/**
 * How long a claim holds a transaction: the backoff, but never less than one branch call's
 * deadline plus a second, so a slow round is not claimed again by another instance while it
 * is still calling (a dead instance's work then waits at most that long).
 */
export function leaseMs(settings: TxSettings, round: number): number {
  return Math.max(backoffMs(settings, round), settings.requestTimeoutMs + 1000);
}
