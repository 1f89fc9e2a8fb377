/**
 * The few numbers an analysis needs from a Prometheus text exposition: call counts by status
 * code and the latency histogram of the server side, summed over methods. Health and reflection
 * calls (`grpc.*` services) are left out: probes are not user traffic.
 */
import { ERROR_CODES } from "./analysis-spec";

export interface CallCounters {
  readonly requests: number;
  readonly errors: number;
  /** Cumulative bucket counts by upper bound (`Infinity` for `+Inf`). */
  readonly buckets: ReadonlyMap<number, number>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const ERRORS = new Set<string>(ERROR_CODES);

export function parseCallCounters(text: string): CallCounters {
  let requests = 0;
  let errors = 0;
  const buckets = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const name = m[1]!;
    if (name !== "grpc_server_handled_total" && name !== "grpc_server_handling_seconds_bucket") continue;
    const labels = new Map<string, string>();
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels.set(l[1]!, l[2]!);
    if ((labels.get("grpc_service") ?? "").startsWith("grpc.")) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (name === "grpc_server_handled_total") {
      requests += value;
      if (ERRORS.has(labels.get("grpc_code") ?? "")) errors += value;
    } else {
      const le = labels.get("le");
      const bound = le === "+Inf" ? Infinity : Number(le);
      if (!Number.isNaN(bound)) buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    }
  }
  return { requests, errors, buckets };
}

/** `a - b` per counter; a counter that went down (a restart) counts from zero. */
export function subtract(a: CallCounters, b: CallCounters | undefined): CallCounters {
  if (!b || a.requests < b.requests) return a;
  const buckets = new Map<number, number>();
  for (const [le, n] of a.buckets) buckets.set(le, Math.max(0, n - (b.buckets.get(le) ?? 0)));
  return { requests: a.requests - b.requests, errors: Math.max(0, a.errors - b.errors), buckets };
}

export function add(a: CallCounters, b: CallCounters): CallCounters {
  const buckets = new Map(a.buckets);
  for (const [le, n] of b.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n);
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, buckets };
}

export const EMPTY_COUNTERS: CallCounters = { requests: 0, errors: 0, buckets: new Map() };

/** The q-quantile from cumulative buckets, interpolated within the bucket as Prometheus does; undefined when empty. */
export function quantile(q: number, buckets: ReadonlyMap<number, number>): number | undefined {
  const sorted = [...buckets].sort((x, y) => x[0] - y[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(count - prevCount, 1e-12);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}
