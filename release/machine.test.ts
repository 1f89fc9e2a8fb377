import { expect } from "chai";
import { defaultAnalysis } from "./analysis/analysis-spec";
import { judge, type Measurement } from "./analysis/judge";
import { applyCommand, newRelease, nextAction, recordMeasurement, ReleaseCommandError, type Action } from "./machine";
import { ruleAt } from "./rules";
import { canarySteps, type ReleaseSpec } from "./spec";
import type { ReleaseState } from "./state";

const analysis = defaultAnalysis({ intervalMs: 1000, count: 2, minRequests: 10 });
const spec: ReleaseSpec = { service: "greeter", strategy: "canary", stable: { version: "v1" }, canary: { version: "v2" }, steps: canarySteps({ weights: [10, 50, 100], analysis: true }), analysis };

/** Applies what `nextAction` asks, measuring with `sample` when asked. */
function drive(state: ReleaseState, now: number, sample: () => Measurement): { state: ReleaseState; action: Action; weights: number[] } {
  const weights: number[] = [];
  for (let i = 0; i < 20; i++) {
    const action = nextAction(state, now);
    if (action.kind === "wait") return { state, action, weights };
    const t = action.kind === "measure" ? recordMeasurement(state, sample(), now) : action.transition;
    if (t.rule) {
      const split = t.rule.routes?.find((r) => r.name === "split");
      weights.push(split ? split.to[1]!.weight! : 100);
    }
    state = t.state;
  }
  throw new Error("no wait within 20 actions");
}

const good = (at: number) => judge(analysis, { requests: 100, errors: 0, latencyP99: 0.01 }, { requests: 400, errors: 0, latencyP99: 0.01 }, at);
const bad = (at: number) => judge(analysis, { requests: 100, errors: 20, latencyP99: 0.01 }, { requests: 400, errors: 0, latencyP99: 0.01 }, at);
const empty = (at: number) => judge(analysis, { requests: 3, errors: 0 }, { requests: 400, errors: 0 }, at);

describe("release state machine", () => {
  it("sets the first weight, waits one interval, and promotes after passing analyses", () => {
    let t = 0;
    let run = drive(newRelease(spec, null, t), t, () => good(t));
    expect(run.weights).to.deep.equal([10]);
    expect(run.action).to.deep.equal({ kind: "wait", untilMs: 1000 });
    const weights: number[] = [...run.weights];
    for (t = 1000; t <= 10_000 && run.state.phase === "Progressing"; t += 1000) {
      run = drive(run.state, t, () => good(t));
      weights.push(...run.weights);
    }
    expect(weights).to.deep.equal([10, 50, 100, 100]);
    expect(run.state.phase).to.equal("Succeeded");
    expect(run.state.analysisRuns.map((r) => r.outcome)).to.deep.equal(["passed", "passed"]);
  });

  it("aborts to 0 % on a canary failing 20 % of calls, as Degraded with the reason", () => {
    let run = drive(newRelease(spec, null, 0), 0, () => bad(0));
    run = drive(run.state, 1000, () => bad(1000));
    expect(run.weights).to.deep.equal([0]);
    expect(run.state.phase).to.equal("Degraded");
    expect(run.state.message).to.match(/success rate 80\.00 %/);
  });

  it("follows the no-data policy: pause, fail, or skip", () => {
    const withPolicy = (noData: "pause" | "fail" | "skip") => {
      const s = { ...spec, analysis: { ...analysis, noData } };
      let run = drive(newRelease(s, null, 0), 0, () => empty(0));
      run = drive(run.state, 1000, () => judge(s.analysis, { requests: 3, errors: 0 }, { requests: 400, errors: 0 }, 1000));
      return run.state;
    };
    expect(withPolicy("pause").phase).to.equal("Paused");
    expect(withPolicy("pause").pausedBy).to.equal("analysis");
    expect(withPolicy("fail").phase).to.equal("Degraded");
    const skipped = withPolicy("skip");
    expect(skipped.phase).to.equal("Progressing");
    expect(skipped.measurements.map((m) => m.verdict)).to.deep.equal(["NoData"]);
  });

  it("pauses on an inconclusive measurement and moves past it when resumed", () => {
    let run = drive(newRelease(spec, null, 0), 0, () => good(0));
    const meh = judge(analysis, { requests: 100, errors: 2, latencyP99: 0.01 }, { requests: 100, errors: 1, latencyP99: 0.01 }, 1000);
    expect(meh.verdict).to.equal("Inconclusive");
    run = drive(run.state, 1000, () => meh);
    expect(run.state.phase).to.equal("Paused");
    const resumed = applyCommand(run.state, "resume", 1500);
    expect(resumed.state.phase).to.equal("Progressing");
    // The next weight goes with the command; the controller carries on with the analysis after it.
    expect(resumed.state.weight).to.equal(50);
    expect(resumed.rule).to.deep.equal(ruleAt(spec, 50));
    expect(nextAction(resumed.state, 1500).kind).to.equal("wait");
  });

  it("aborts, retries from the first step, and refuses commands that do not apply", () => {
    const started = drive(newRelease(spec, null, 0), 0, () => good(0)).state;
    const aborted = applyCommand(started, "abort", 10);
    expect(aborted.state.phase).to.equal("Aborted");
    expect(aborted.rule!.routes!.at(-1)!.to.map((t) => t.weight)).to.deep.equal([100, 0]);
    expect(() => applyCommand(aborted.state, "abort", 20)).to.throw(ReleaseCommandError, "already Aborted");
    expect(() => applyCommand(aborted.state, "resume", 20)).to.throw(ReleaseCommandError, "not Paused");
    const retried = applyCommand(aborted.state, "retry", 30).state;
    expect([retried.phase, retried.stepIndex, retried.weight]).to.deep.equal(["Progressing", 0, 0]);
    expect(() => applyCommand(started, "retry", 40)).to.throw(ReleaseCommandError, "only an aborted or degraded");
  });

  it("promote --full goes straight to the promoted rule; undo restores the rule from before", () => {
    const before = { routes: [{ to: [{ subset: "x" }] }], subsets: { x: { labels: { version: "v0" } } } };
    const started = drive(newRelease(spec, before, 0), 0, () => good(0)).state;
    const full = applyCommand(started, "promote-full", 5);
    expect(full.state.phase).to.equal("Succeeded");
    expect(full.rule!.subsets).to.deep.equal({ stable: { labels: { version: "v2" } } });
    const undone = applyCommand(full.state, "undo", 6);
    expect(undone.rule).to.deep.equal(before);
    expect(undone.state.phase).to.equal("Aborted");
  });

  it("blue-green sends only testers to green until promoted, then switches everything at once", () => {
    const bg: ReleaseSpec = { service: "greeter", strategy: "blueGreen", stable: { version: "v1" }, canary: { version: "v2" }, steps: [{ setWeight: 0 }, { pause: {} }], testers: { headers: { "x-tester": "yes" } } };
    const first = nextAction(newRelease(bg, null, 0), 0);
    if (first.kind !== "apply") throw new Error("expected apply");
    expect(first.transition.rule!.routes!.map((r) => r.name)).to.deep.equal(["testers", "blue"]);
    const paused = nextAction(first.transition.state, 1);
    if (paused.kind !== "apply") throw new Error("expected apply");
    expect(paused.transition.state.phase).to.equal("Paused");
    // The command itself switches: no controller needs to run for traffic to move.
    const promoted = applyCommand(paused.transition.state, "promote", 2);
    expect(promoted.state.phase).to.equal("Succeeded");
    expect(promoted.rule!.routes!.map((r) => r.name)).to.deep.equal(["green"]);
    expect(nextAction(promoted.state, 3).kind).to.equal("wait");
  });

  it("promote and resume write the weight steps that follow at once, and stop at the next pause or analysis", () => {
    const canary: ReleaseSpec = { service: "greeter", strategy: "canary", stable: { version: "v1" }, canary: { version: "v2" }, steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }, { setWeight: 100 }] };
    const first = nextAction(newRelease(canary, null, 0), 0);
    if (first.kind !== "apply") throw new Error("expected apply");
    const paused = nextAction(first.transition.state, 1);
    if (paused.kind !== "apply") throw new Error("expected apply");
    const promoted = applyCommand(paused.transition.state, "promote", 2);
    expect(promoted.state.weight).to.equal(50);
    expect(promoted.rule, "the 50 % rule goes with the command").to.deep.equal(ruleAt(canary, 50));
    expect(promoted.state.stepIndex, "at the second pause").to.equal(3);
    const paused2 = nextAction(promoted.state, 3);
    if (paused2.kind !== "apply") throw new Error("expected apply");
    const resumed = applyCommand(paused2.transition.state, "resume", 4);
    expect(resumed.state.phase).to.equal("Succeeded");
    expect(resumed.state.weight).to.equal(100);
  });
});
