/**
 * What a release is asked to do, as plain data (stored in etcd with its state): the strategy,
 * the two sides by instance labels, the steps, and the analysis between them. Steps follow Argo
 * Rollouts' vocabulary: `setWeight`, `pause` (for a time, or until resumed), `analysis`.
 */
import type { Labels } from "../runtime/balancing/rule-builders";
import type { RouteMatch, StickySource } from "../runtime/balancing/traffic-rule";
import type { AnalysisSpec } from "./analysis/analysis-spec";

export type Strategy = "canary" | "blueGreen";

/** One step of a release. */
export type ReleaseStep =
  | { readonly setWeight: number }
  /** Without `durationMs`, waits until someone resumes or promotes. */
  | { readonly pause: { readonly durationMs?: number } }
  /** Measures canary against stable `count` times, every `intervalMs` (see {@link AnalysisSpec}). */
  | { readonly analysis: Record<string, never> };

export interface ReleaseSpec {
  readonly service: string;
  readonly strategy: Strategy;
  /** The running release (blue, for blue-green). */
  readonly stable: Labels;
  /** The new release (green, for blue-green). */
  readonly canary: Labels;
  readonly steps: readonly ReleaseStep[];
  /** How `analysis` steps judge the canary; required when there is one. */
  readonly analysis?: AnalysisSpec;
  /** Sticky key source, so a user stays on one side while weights change. */
  readonly sticky?: StickySource;
  /** Requests sent to the canary (green) whatever the weight: internal testers. */
  readonly testers?: RouteMatch;
}

/** Throws a `RangeError` naming the first problem; returns the spec. */
export function checkSpec(spec: ReleaseSpec): ReleaseSpec {
  if (spec.strategy !== "canary" && spec.strategy !== "blueGreen") throw new RangeError(`strategy must be "canary" or "blueGreen", got ${JSON.stringify(spec.strategy)}`);
  for (const [side, labels] of [["stable", spec.stable], ["canary", spec.canary]] as const) {
    if (typeof labels !== "object" || labels === null || Object.keys(labels).length === 0) throw new RangeError(`${side} needs at least one label, e.g. version=v1`);
  }
  if (JSON.stringify(spec.stable) === JSON.stringify(spec.canary)) throw new RangeError("stable and canary select the same labels");
  let last = 0;
  spec.steps.forEach((step, i) => {
    if ("setWeight" in step) {
      const w = step.setWeight;
      if (!Number.isInteger(w) || w < 0 || w > 100) throw new RangeError(`steps[${i}].setWeight must be an integer 0–100, got ${String(w)}`);
      if (w < last) throw new RangeError(`steps[${i}].setWeight ${w} is below the previous weight ${last}: weights only rise`);
      last = w;
    } else if ("pause" in step) {
      const d = step.pause.durationMs;
      if (d !== undefined && !(Number.isFinite(d) && d >= 0)) throw new RangeError(`steps[${i}].pause.durationMs must be ≥ 0`);
    } else if ("analysis" in step) {
      if (!spec.analysis) throw new RangeError(`steps[${i}] is an analysis but the release has no analysis settings`);
    } else {
      throw new RangeError(`steps[${i}] must be setWeight, pause or analysis`);
    }
  });
  return spec;
}

export interface CanaryStepsOptions {
  /** Canary weights in order, e.g. `[5, 25, 50, 100]`. */
  weights: readonly number[];
  /** A pause after each weight below 100 (undefined: none; `Infinity`: until resumed). */
  pauseMs?: number;
  /** An analysis after each weight below 100. */
  analysis: boolean;
}

/** The usual canary step list: each weight, then the pause and/or analysis, up to 100. */
export function canarySteps(options: CanaryStepsOptions): ReleaseStep[] {
  const steps: ReleaseStep[] = [];
  for (const w of options.weights) {
    steps.push({ setWeight: w });
    if (w >= 100) break;
    if (options.pauseMs !== undefined) steps.push({ pause: Number.isFinite(options.pauseMs) ? { durationMs: options.pauseMs } : {} });
    if (options.analysis) steps.push({ analysis: {} });
  }
  return steps;
}

/**
 * Blue-green: green gets no user traffic (testers only), is analysed if asked (on the testers'
 * traffic), then waits for `promote` unless `autoPromote`.
 */
export function blueGreenSteps(options: { analysis: boolean; autoPromote?: boolean }): ReleaseStep[] {
  const steps: ReleaseStep[] = [];
  if (options.analysis) steps.push({ analysis: {} });
  if (!options.autoPromote) steps.push({ pause: {} });
  return steps;
}
