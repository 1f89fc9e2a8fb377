/**
 * A release's state as stored in etcd: where it is in its steps, its phase (Argo Rollouts' and
 * Flagger's names), the canary weight in force, the current analysis step's measurements, and a
 * short event log. Everything a restarted controller needs to carry on is in here.
 */
import type { TrafficRule } from "../runtime/balancing/traffic-rule";
import type { Measurement } from "./analysis/judge";
import type { ReleaseSpec } from "./spec";

export type Phase =
  | "Progressing"
  /** Waiting: a pause step, a human's `pause`, or an analysis that could not decide. */
  | "Paused"
  /** Every step done; the canary is the stable release. */
  | "Succeeded"
  /** Stopped by a human (`abort`, `undo`); traffic is back on stable. */
  | "Aborted"
  /** Stopped by a failed analysis; traffic is back on stable. */
  | "Degraded";

/** Who paused a release; `resume` moves past a paused step but not past a user's pause mid-step. */
export type PauseCause = "step" | "user" | "analysis";

export interface ReleaseEvent {
  readonly at: number;
  readonly text: string;
}

export interface AnalysisRun {
  readonly step: number;
  readonly outcome: string;
  readonly measurements: readonly Measurement[];
}

export interface ReleaseState {
  /** Unique per release of the service (start time and a random suffix). */
  readonly id: string;
  readonly spec: ReleaseSpec;
  readonly phase: Phase;
  readonly pausedBy?: PauseCause;
  /** One line: what is happening or why it stopped. */
  readonly message: string;
  /** The step to run next (== steps.length: all done). */
  readonly stepIndex: number;
  readonly stepStartedAt: number;
  /** Canary (green) share in force, 0–100. */
  readonly weight: number;
  /** Measurements of the analysis step under way. */
  readonly measurements: readonly Measurement[];
  /** Finished analysis steps, the last few. */
  readonly analysisRuns: readonly AnalysisRun[];
  /** Set by `undo`: the rule from before the release is back in force. */
  readonly restored?: boolean;
  /** The rule in force before the release started (`undo` restores it); null: there was none. */
  readonly ruleBefore: TrafficRule | null;
  readonly startedAt: number;
  readonly updatedAt: number;
  /** The last events, oldest first. */
  readonly events: readonly ReleaseEvent[];
}

export const MAX_EVENTS = 50;
export const MAX_ANALYSIS_RUNS = 10;

/** A finished release: nothing drives it any more. */
export function isDone(phase: Phase): boolean {
  return phase === "Succeeded" || phase === "Aborted" || phase === "Degraded";
}

/** `state` with changes, an event appended (bounded) and `updatedAt` set. */
export function evolve(state: ReleaseState, now: number, changes: Partial<ReleaseState>, event?: string): ReleaseState {
  const events = event === undefined ? state.events : [...state.events, { at: now, text: event }].slice(-MAX_EVENTS);
  return { ...state, ...changes, events, updatedAt: now };
}
