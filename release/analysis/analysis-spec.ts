/**
 * How a release judges its canary: which numbers, where they come from, and what counts as
 * pass, fail, inconclusive or no data. Results are data (Argo Rollouts' Successful / Failed /
 * Inconclusive, plus NoData), never control flow, so they are stored and shown as they were.
 */

/** What to do with an interval that had too few requests to judge (the commonest complaint about canaries). */
export type NoDataPolicy = "fail" | "pause" | "skip";

/** One number compared for canary and stable. */
export interface MetricCheck {
  /** `success-rate` (0–1, higher is better) or `latency-p99` (seconds, lower is better). */
  readonly metric: "success-rate" | "latency-p99";
  /** The canary passes at or beyond this (≥ for success rate, ≤ for latency). */
  readonly pass: number;
  /** The canary fails beyond this (< for success rate, > for latency). Between pass and fail: inconclusive. Default: `pass`. */
  readonly fail?: number;
  /**
   * Also fail when the canary is worse than stable by more than this: an absolute drop for the
   * success rate (0.02 = two points), a ratio for latency (1.5 = 50 % slower).
   */
  readonly maxWorseThanStable?: number;
}

/** Where measurements come from. */
export type MetricSourceSpec =
  | { readonly kind: "prometheus"; readonly url: string; readonly queries?: Partial<PromQueries> }
  /** Scrape the instances' own `/metrics` (registered `metrics_port`) and compute deltas. */
  | { readonly kind: "scrape" };

/**
 * PromQL templates. Placeholders: `{{selector}}` (the subset's labels and the service, as a
 * label matcher list), `{{interval}}` (the analysis interval, e.g. `30s`).
 */
export interface PromQueries {
  readonly requests: string;
  readonly errors: string;
  readonly latencyP99: string;
}

/** Codes that count against the canary: the server's own failures, not the caller's mistakes. */
export const ERROR_CODES = ["UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED", "UNIMPLEMENTED"] as const;

export const DEFAULT_QUERIES: PromQueries = {
  requests: "sum(increase(grpc_server_handled_total{ {{selector}} }[{{interval}}]))",
  errors: `sum(increase(grpc_server_handled_total{ {{selector}}, grpc_code=~"${ERROR_CODES.join("|")}" }[{{interval}}]))`,
  latencyP99: "histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket{ {{selector}} }[{{interval}}])))",
};

export interface AnalysisSpec {
  readonly source: MetricSourceSpec;
  /** Time between measurements. */
  readonly intervalMs: number;
  /** Measurements per analysis step; the step succeeds after this many without too many failures. */
  readonly count: number;
  /** Failed measurements tolerated; one more aborts the release. */
  readonly failureLimit: number;
  /** Fewer canary requests than this in an interval is "no data". */
  readonly minRequests: number;
  readonly noData: NoDataPolicy;
  readonly checks: readonly MetricCheck[];
}

/** The `default` analysis: success rate ≥ 99 % (fail under 95 %), p99 latency ≤ 1 s. */
export function defaultAnalysis(overrides: Partial<AnalysisSpec> = {}): AnalysisSpec {
  return {
    source: { kind: "scrape" },
    intervalMs: 30_000,
    count: 3,
    failureLimit: 0,
    minRequests: 20,
    noData: "pause",
    checks: [
      { metric: "success-rate", pass: 0.99, fail: 0.95, maxWorseThanStable: 0.02 },
      { metric: "latency-p99", pass: 1, fail: 2 },
    ],
    ...overrides,
  };
}

/** Throws a `RangeError` naming the first problem. */
export function checkAnalysis(a: AnalysisSpec): AnalysisSpec {
  if (!(a.intervalMs > 0)) throw new RangeError("analysis.intervalMs must be > 0");
  if (!Number.isInteger(a.count) || a.count < 1) throw new RangeError("analysis.count must be an integer ≥ 1");
  if (!Number.isInteger(a.failureLimit) || a.failureLimit < 0) throw new RangeError("analysis.failureLimit must be an integer ≥ 0");
  if (!(a.minRequests >= 0)) throw new RangeError("analysis.minRequests must be ≥ 0");
  if (!["fail", "pause", "skip"].includes(a.noData)) throw new RangeError(`analysis.noData must be fail, pause or skip, got ${JSON.stringify(a.noData)}`);
  if (a.source.kind === "prometheus" && !/^https?:\/\//.test(a.source.url)) throw new RangeError("analysis.source.url must be an http(s) URL of a Prometheus server");
  if (a.checks.length === 0) throw new RangeError("analysis.checks must name at least one check");
  for (const c of a.checks) {
    if (c.metric !== "success-rate" && c.metric !== "latency-p99") throw new RangeError(`unknown check metric ${JSON.stringify(c.metric)}`);
    const fail = c.fail ?? c.pass;
    if (c.metric === "success-rate" ? fail > c.pass : fail < c.pass) throw new RangeError(`check ${c.metric}: fail threshold ${fail} is on the passing side of ${c.pass}`);
  }
  return a;
}
