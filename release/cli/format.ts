import { successRate, type Measurement } from "../analysis/judge";
import { formatDuration } from "../../runtime/duration";
import type { ReleaseState } from "../state";
import { formatLabels } from "./labels";

/** `status`: the release in a few lines. */
export function formatStatus(s: ReleaseState, now: number): string {
  const step = s.spec.steps[s.stepIndex];
  const stepText = step === undefined ? "done" : "setWeight" in step ? `setWeight ${step.setWeight}` : "pause" in step ? `pause${step.pause.durationMs === undefined ? " (until resumed)" : ` ${formatDuration(step.pause.durationMs)}`}` : "analysis";
  const lines = [
    `release   ${s.id}`,
    `service   ${s.spec.service} (${s.spec.strategy === "blueGreen" ? "blue-green" : "canary"})`,
    `stable    ${formatLabels(s.spec.stable)}`,
    `canary    ${formatLabels(s.spec.canary)}`,
    `phase     ${s.phase}${s.pausedBy ? ` (by ${s.pausedBy})` : ""}`,
    `weight    ${s.weight} % canary`,
    `step      ${Math.min(s.stepIndex + 1, s.spec.steps.length)}/${s.spec.steps.length}: ${stepText}`,
    `message   ${s.message}`,
    `updated   ${formatDuration(Math.max(0, now - s.updatedAt))} ago`,
  ];
  for (const m of s.measurements) lines.push(`  ${formatMeasurement(m)}`);
  return `${lines.join("\n")}\n`;
}

export function formatMeasurement(m: Measurement): string {
  const rate = (x: number | undefined) => (x === undefined ? "-" : `${(x * 100).toFixed(2)}%`);
  const p99 = (x: number | undefined) => (x === undefined ? "-" : `${Math.round(x * 1000)}ms`);
  return `${new Date(m.at).toISOString()} ${m.verdict.padEnd(12)} canary ${Math.round(m.canary.requests)} req ${rate(successRate(m.canary))} p99 ${p99(m.canary.latencyP99)} · stable ${Math.round(m.stable.requests)} req ${rate(successRate(m.stable))} p99 ${p99(m.stable.latencyP99)}`;
}

/** One line per release for `list` and `history`. */
export function formatRow(s: ReleaseState): string {
  return `${s.spec.service.padEnd(20)} ${s.id.padEnd(24)} ${s.phase.padEnd(12)} ${String(s.weight).padStart(3)} %  ${formatLabels(s.spec.stable)} → ${formatLabels(s.spec.canary)}  ${s.message}`;
}
