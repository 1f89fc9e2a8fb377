/**
 * Client keepalive: an HTTP/2 PING every `timeMs` while calls are in flight; no answer within
 * `timeoutMs` drops the connection, so calls stuck on a hung (SIGSTOPped, partitioned) server fail
 * over instead of waiting for their deadlines, and the endpoint leaves the READY set until it
 * reconnects.
 *
 * Pings are never rejected as abuse by the servers this is tuned for: grpc-js servers (ours)
 * enforce no ping policy; gRPC C-core and Go servers count a "strike" only for pings sent while no
 * data flows, and these are sent only while calls are in flight (`permitWithoutCalls` off). A
 * server with a stricter policy (Go's `EnforcementPolicy.MinTime` above 5 s with idle streams)
 * needs a `timeMs` at least as long: set `keepalive: { timeMs }` to match it.
 */

/** Keepalive settings of a client, in milliseconds. */
export interface KeepaliveOption {
  /** Interval between pings while calls are in flight (default 5,000; at least 1,000). */
  timeMs?: number;
  /** How long a ping may go unanswered before the connection is dropped (default 2,000). */
  timeoutMs?: number;
}

export const KEEPALIVE_DEFAULTS: Required<KeepaliveOption> = { timeMs: 5000, timeoutMs: 2000 };

/** The grpc-js channel options for `option`; throws a RangeError naming a bad field. */
export function keepaliveOptions(option: KeepaliveOption): Record<string, number> {
  if (typeof option !== "object" || option === null) throw new TypeError(`keepalive must be an object or false, got ${typeof option}`);
  const timeMs = option.timeMs ?? KEEPALIVE_DEFAULTS.timeMs;
  const timeoutMs = option.timeoutMs ?? KEEPALIVE_DEFAULTS.timeoutMs;
  if (typeof timeMs !== "number" || !Number.isFinite(timeMs) || timeMs < 1000) throw new RangeError(`keepalive.timeMs must be at least 1000 (ms), got ${String(timeMs)}`);
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 100) throw new RangeError(`keepalive.timeoutMs must be at least 100 (ms), got ${String(timeoutMs)}`);
  return {
    "grpc.keepalive_time_ms": timeMs,
    "grpc.keepalive_timeout_ms": timeoutMs,
    "grpc.keepalive_permit_without_calls": 0,
  };
}
