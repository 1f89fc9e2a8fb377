/**
 * The release state machine, pure: given the stored state and the time, what to do next; given
 * a command or a measurement, the next state and the rule to write. The controller and the CLI
 * only carry these out against etcd, so every transition is unit-tested without a cluster.
 */
import { randomBytes } from "node:crypto";
import type { TrafficRule } from "../runtime/balancing/traffic-rule";
import { stepOutcome, type Measurement } from "./analysis/judge";
import { abortedRule, promotedRule, ruleAt } from "./rules";
import { evolve, isDone, MAX_ANALYSIS_RUNS, type ReleaseState } from "./state";
import { checkSpec, type ReleaseSpec } from "./spec";

/** A new state plus, when traffic must change, the rule to write first. */
export interface Transition {
  readonly state: ReleaseState;
  readonly rule?: TrafficRule;
}

/** What the controller should do for a release now. */
export type Action =
  | { readonly kind: "wait"; readonly untilMs?: number }
  /** Write `rule`, then store `state`. */
  | { readonly kind: "apply"; readonly transition: Transition }
  /** Take a measurement, then call {@link recordMeasurement}. */
  | { readonly kind: "measure" };

/** The state of a release that has not done anything yet. */
export function newRelease(spec: ReleaseSpec, ruleBefore: TrafficRule | null, now: number): ReleaseState {
  checkSpec(spec);
  return {
    id: `${new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${randomBytes(3).toString("hex")}`,
    spec,
    phase: "Progressing",
    message: "starting",
    stepIndex: 0,
    stepStartedAt: now,
    weight: 0,
    measurements: [],
    analysisRuns: [],
    ruleBefore,
    startedAt: now,
    updatedAt: now,
    events: [{ at: now, text: `started (${spec.strategy}, ${spec.steps.length} steps)` }],
  };
}

/** The next thing to do for `state` at `now`. */
export function nextAction(state: ReleaseState, now: number): Action {
  if (state.phase !== "Progressing") return { kind: "wait" };
  const { steps } = state.spec;
  const step = steps[state.stepIndex];
  if (step === undefined) return { kind: "apply", transition: succeed(state, now, "all steps done") };
  if ("setWeight" in step) {
    const weight = step.setWeight;
    const moved = advance(state, now, { weight }, `weight ${weight} %`);
    return { kind: "apply", transition: { state: moved, rule: ruleAt(state.spec, weight) } };
  }
  if ("pause" in step) {
    const d = step.pause.durationMs;
    if (d === undefined) return { kind: "apply", transition: { state: evolve(state, now, { phase: "Paused", pausedBy: "step", message: "paused until resumed or promoted" }, "paused until resumed") } };
    if (now >= state.stepStartedAt + d) return { kind: "apply", transition: { state: advance(state, now, {}, "pause over") } };
    return { kind: "wait", untilMs: state.stepStartedAt + d };
  }
  const analysis = state.spec.analysis!;
  const last = state.measurements.at(-1);
  // The first measurement comes one interval after the step began: the window must hold canary traffic at this weight.
  const due = (last?.at ?? state.stepStartedAt) + analysis.intervalMs;
  if (now >= due) return { kind: "measure" };
  return { kind: "wait", untilMs: due };
}

/** Adds a measurement to the analysis step under way and decides. */
export function recordMeasurement(state: ReleaseState, m: Measurement, now: number): Transition {
  const analysis = state.spec.analysis!;
  const measurements = [...state.measurements, m];
  const outcome = stepOutcome(analysis, measurements);
  const line = `analysis: ${m.verdict}${m.reasons.length ? ` (${m.reasons.join("; ")})` : ""}`;
  const withRun = (o: string) => [...state.analysisRuns, { step: state.stepIndex, outcome: o, measurements }].slice(-MAX_ANALYSIS_RUNS);
  switch (outcome.kind) {
    case "continue":
      return { state: evolve(state, now, { measurements, message: line }, line) };
    case "passed":
      return { state: advance(evolve(state, now, { analysisRuns: withRun("passed") }, line), now, {}, "analysis passed") };
    case "pause":
      return { state: evolve(state, now, { measurements, phase: "Paused", pausedBy: "analysis", message: outcome.reason }, `paused: ${outcome.reason}`) };
    case "failed":
      return {
        state: evolve(state, now, { measurements, analysisRuns: withRun("failed"), phase: "Degraded", pausedBy: undefined, weight: 0, message: `aborted by analysis: ${outcome.reason}` }, `aborted by analysis: ${outcome.reason}`),
        rule: abortedRule(state.spec),
      };
  }
}

/** A command from a human (CLI, console). Throws a `ReleaseCommandError` when it does not apply. */
export type Command = "pause" | "resume" | "promote" | "promote-full" | "abort" | "retry" | "undo";

export class ReleaseCommandError extends Error {
  override readonly name = "ReleaseCommandError";
}

export function applyCommand(state: ReleaseState, command: Command, now: number): Transition {
  const refuse = (why: string): never => {
    throw new ReleaseCommandError(`cannot ${command.replace("-full", " --full")} release ${state.id} of ${state.spec.service}: ${why}`);
  };
  const done = isDone(state.phase);
  switch (command) {
    case "pause":
      if (state.phase !== "Progressing") refuse(`it is ${state.phase}`);
      return { state: evolve(state, now, { phase: "Paused", pausedBy: "user", message: "paused by a user" }, "paused by a user") };
    case "resume": {
      if (state.phase !== "Paused") refuse(`it is ${state.phase}, not Paused`);
      if (state.pausedBy === "user") return { state: evolve(state, now, { phase: "Progressing", pausedBy: undefined, message: "resumed" }, "resumed") };
      // A paused step, or an analysis a human has now judged: carry on with the next step.
      return carryOn(advance(evolve(state, now, { phase: "Progressing", pausedBy: undefined }), now, {}, `resumed past step ${state.stepIndex + 1}`), now);
    }
    case "promote":
      if (done) refuse(`it is ${state.phase}`);
      return carryOn(advance(evolve(state, now, { phase: "Progressing", pausedBy: undefined }), now, {}, `promoted past step ${state.stepIndex + 1}`), now);
    case "promote-full":
      if (done) refuse(`it is ${state.phase}`);
      return succeed(state, now, "promoted in full by a user");
    case "abort":
      if (done) refuse(`it is already ${state.phase}`);
      return { state: evolve(state, now, { phase: "Aborted", pausedBy: undefined, weight: 0, message: "aborted by a user" }, "aborted by a user"), rule: abortedRule(state.spec) };
    case "retry":
      if (state.phase !== "Aborted" && state.phase !== "Degraded") refuse(`it is ${state.phase}; only an aborted or degraded release is retried`);
      return {
        state: evolve(state, now, { phase: "Progressing", pausedBy: undefined, stepIndex: 0, stepStartedAt: now, weight: 0, restored: undefined, measurements: [], message: "retrying from the first step" }, "retried"),
      };
    case "undo": {
      const before = state.ruleBefore;
      const rule = before ?? abortedRule(state.spec);
      return { state: evolve(state, now, { phase: "Aborted", pausedBy: undefined, weight: 0, restored: true, message: before ? "undone: the rule from before the release is back" : "undone: every call on stable" }, "undone"), rule };
    }
  }
}

/** The rule a stored state stands for: what a controller re-writes when a command raced its own write. */
export function ruleForState(state: ReleaseState): TrafficRule {
  if (state.restored) return state.ruleBefore ?? abortedRule(state.spec);
  if (state.phase === "Aborted" || state.phase === "Degraded") return abortedRule(state.spec);
  if (state.phase === "Succeeded") return promotedRule(state.spec);
  return ruleAt(state.spec, state.weight);
}

/**
 * What a command that moves a release on does at once rather than leaving to a controller: the
 * weight steps that follow (their rule is written with the command) and, past the last step,
 * success with the promoted rule. So `promote` and `resume` move traffic with or without a
 * running controller; a pause or an analysis step still waits for one.
 */
function carryOn(state: ReleaseState, now: number): Transition {
  let current = state;
  let rule: TrafficRule | undefined;
  for (;;) {
    const step = current.spec.steps[current.stepIndex];
    if (step === undefined) return succeed(current, now, "all steps done");
    if (!("setWeight" in step)) return rule ? { state: current, rule } : { state: current };
    current = advance(current, now, { weight: step.setWeight }, `weight ${step.setWeight} %`);
    rule = ruleAt(current.spec, step.setWeight);
  }
}

function advance(state: ReleaseState, now: number, changes: Partial<ReleaseState>, event: string): ReleaseState {
  return evolve(state, now, { ...changes, stepIndex: state.stepIndex + 1, stepStartedAt: now, measurements: [], message: event }, event);
}

function succeed(state: ReleaseState, now: number, why: string): Transition {
  return {
    state: evolve(state, now, { phase: "Succeeded", pausedBy: undefined, stepIndex: state.spec.steps.length, weight: 100, measurements: [], message: `succeeded: ${why}` }, `succeeded: ${why}`),
    rule: promotedRule(state.spec),
  };
}
