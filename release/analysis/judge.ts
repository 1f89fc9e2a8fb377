/**
 * Judging one interval's numbers and an analysis step's run of measurements. Pure: the
 * controller stores what these return, so `status` shows exactly why a release moved.
 */
import type { AnalysisSpec, MetricCheck } from "./analysis-spec";

/** One side's numbers over one interval. */
export interface SideSample {
  readonly requests: number;
  /** Requests that ended in a server-side error code. */
  readonly errors: number;
  /** Seconds; absent when there were no requests or no histogram. */
  readonly latencyP99?: number;
}

export type Verdict = "Successful" | "Failed" | "Inconclusive" | "NoData";

export interface Measurement {
  /** Epoch ms. */
  readonly at: number;
  readonly verdict: Verdict;
  readonly canary: SideSample;
  readonly stable: SideSample;
  /** Why, one line per check that did not pass (or why there was no data). */
  readonly reasons: readonly string[];
}

/** Success rate of a side, or undefined with no requests. */
export function successRate(side: SideSample): number | undefined {
  return side.requests > 0 ? 1 - side.errors / side.requests : undefined;
}

/** The verdict on one interval. */
export function judge(spec: AnalysisSpec, canary: SideSample, stable: SideSample, at: number): Measurement {
  if (canary.requests < spec.minRequests || canary.requests === 0) {
    return { at, verdict: "NoData", canary, stable, reasons: [`canary served ${round(canary.requests)} requests, under the minimum of ${spec.minRequests}`] };
  }
  const reasons: string[] = [];
  let verdict: Verdict = "Successful";
  const worse = (v: Verdict) => {
    if (v === "Failed" || (v === "Inconclusive" && verdict === "Successful")) verdict = v;
  };
  for (const check of spec.checks) {
    const outcome = judgeCheck(check, canary, stable);
    if (outcome.verdict !== "Successful") reasons.push(outcome.reason);
    worse(outcome.verdict);
  }
  return { at, verdict, canary, stable, reasons };
}

function judgeCheck(check: MetricCheck, canary: SideSample, stable: SideSample): { verdict: Verdict; reason: string } {
  const fail = check.fail ?? check.pass;
  if (check.metric === "success-rate") {
    const c = successRate(canary)!;
    const s = successRate(stable);
    if (c < fail) return { verdict: "Failed", reason: `success rate ${pct(c)} is under the failure threshold ${pct(fail)}` };
    if (check.maxWorseThanStable !== undefined && s !== undefined && s - c > check.maxWorseThanStable) {
      return { verdict: "Failed", reason: `success rate ${pct(c)} is ${pct(s - c)} below stable's ${pct(s)} (allowed ${pct(check.maxWorseThanStable)})` };
    }
    if (c < check.pass) return { verdict: "Inconclusive", reason: `success rate ${pct(c)} is between ${pct(fail)} and ${pct(check.pass)}` };
    return { verdict: "Successful", reason: "" };
  }
  const c = canary.latencyP99;
  if (c === undefined || !Number.isFinite(c)) return { verdict: "Inconclusive", reason: "no p99 latency for the canary" };
  const s = stable.latencyP99;
  if (c > fail) return { verdict: "Failed", reason: `p99 latency ${ms(c)} is over the failure threshold ${ms(fail)}` };
  if (check.maxWorseThanStable !== undefined && s !== undefined && Number.isFinite(s) && s > 0 && c / s > check.maxWorseThanStable) {
    return { verdict: "Failed", reason: `p99 latency ${ms(c)} is ${(c / s).toFixed(2)}× stable's ${ms(s)} (allowed ${check.maxWorseThanStable}×)` };
  }
  if (c > check.pass) return { verdict: "Inconclusive", reason: `p99 latency ${ms(c)} is between ${ms(check.pass)} and ${ms(fail)}` };
  return { verdict: "Successful", reason: "" };
}

/** What an analysis step does next, given its measurements so far. */
export type StepOutcome =
  | { readonly kind: "continue" }
  | { readonly kind: "passed" }
  | { readonly kind: "failed"; readonly reason: string }
  | { readonly kind: "pause"; readonly reason: string };

export function stepOutcome(spec: AnalysisSpec, measurements: readonly Measurement[]): StepOutcome {
  const last = measurements.at(-1);
  if (last === undefined) return { kind: "continue" };
  const failed = measurements.filter((m) => m.verdict === "Failed" || (m.verdict === "NoData" && spec.noData === "fail")).length;
  if (failed > spec.failureLimit) {
    const why = last.verdict === "NoData" ? `no data (policy "fail"): ${last.reasons.join("; ")}` : last.reasons.join("; ");
    return { kind: "failed", reason: `${failed} failed measurement(s), over the limit of ${spec.failureLimit}: ${why}` };
  }
  if (last.verdict === "Inconclusive") return { kind: "pause", reason: `inconclusive: ${last.reasons.join("; ")}` };
  if (last.verdict === "NoData" && spec.noData === "pause") return { kind: "pause", reason: `no data (policy "pause"): ${last.reasons.join("; ")}` };
  // "skip" lets an empty interval count as passed: the operator chose that explicitly.
  if (measurements.length >= spec.count) return { kind: "passed" };
  return { kind: "continue" };
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const ms = (s: number) => `${Math.round(s * 1000)} ms`;
const round = (x: number) => String(Math.round(x));
