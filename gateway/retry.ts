import type { BoundRoute } from "./route-table";
import type { RetryPolicy } from "./policy";
import { RpcError, Status } from "../runtime/errors";

/**
 * Route-level retries. A call is tried again only when repeating it cannot do
 * harm: the proto declares the method `idempotency_level = NO_SIDE_EFFECTS`
 * or `IDEMPOTENT`, or the route is an HTTP GET binding (google.api.http maps
 * GET to reads; a GET with side effects breaks HTTP itself, so caches and
 * browsers already repeat it). Client-streaming and bidi methods are never
 * retried. A call is not repeated once any part of the answer has gone to the
 * client, nor when the next attempt could not begin before the deadline.
 */

/** Codes a policy may list; DEADLINE_EXCEEDED and CANCELLED are absent on purpose (no time or no caller left). */
export const RETRYABLE_CODES = ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN"] as const;
export type RetryableCode = (typeof RETRYABLE_CODES)[number];

const DEFAULT_BACKOFF_MS = 25;
const DEFAULT_MAX_BACKOFF_MS = 1000;

/** `idempotency_level` values of `google.protobuf.MethodOptions`. */
const NO_SIDE_EFFECTS = 1;
const IDEMPOTENT = 2;

/** Whether `route`'s calls may be repeated at all (the policy decides whether they are). */
export function retryableRoute(route: BoundRoute): boolean {
  const kind = route.method.methodKind;
  if (kind === "client_streaming" || kind === "bidi_streaming") return false;
  const level = route.method.idempotency as number;
  return level === NO_SIDE_EFFECTS || level === IDEMPOTENT || route.httpMethod === "GET";
}

export interface AttemptControl {
  /** Absolute deadline of the request (ms since the epoch). */
  readonly deadline: number;
  /** Aborted when the client has gone. */
  readonly signal: AbortSignal;
  /** True once part of the answer has been sent: from then on, no retry. */
  readonly committed: () => boolean;
}

/**
 * Runs `attempt` (given its 1-based number) until it succeeds, fails with a
 * code the policy does not list, runs out of attempts, or the next try would
 * start past the deadline; the last failure is thrown as it was.
 */
export async function withRetries<T>(policy: RetryPolicy | undefined, control: AttemptControl, attempt: (n: number) => Promise<T>): Promise<T> {
  const attempts = policy?.attempts ?? 1;
  const codes = new Set<number>((policy?.codes ?? ["UNAVAILABLE"]).map((c) => Status[c]));
  let backoff = policy?.backoffMs ?? DEFAULT_BACKOFF_MS;
  const maxBackoff = policy?.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= attempts || control.signal.aborted || control.committed()) throw err;
      if (!(err instanceof RpcError) || !codes.has(err.code)) throw err;
      // Half fixed, half random: gateways that lost the same upstream at once do not come back in step.
      const wait = backoff / 2 + Math.random() * (backoff / 2);
      if (Date.now() + wait >= control.deadline) throw err;
      await sleep(wait, control.signal);
      if (control.signal.aborted) throw err;
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
