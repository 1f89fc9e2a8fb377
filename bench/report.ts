/** Markdown for the results: tables, goal verdicts, and the header that says where and how they were measured. */
import { cpus, totalmem, release } from "node:os";

/** A goal from the issue and how the run fared against it. */
export interface GoalCheck {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

/** One scenario's part of the report. */
export interface Section {
  readonly title: string;
  /** Paragraphs and tables, in order (already Markdown). */
  readonly body: string[];
  readonly goals: GoalCheck[];
  /** Raw figures for the JSON output. */
  readonly data: unknown;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(" | ")} |`;
  const align = header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(header), line(align), ...rows.map(line)].join("\n");
}

export function goalsTable(goals: readonly GoalCheck[]): string {
  return table(
    ["goal", "measured", "verdict"],
    goals.map((g) => [g.goal, g.measured, g.met ? "met" : "**missed**"]),
  );
}

/** `12,345` */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

/** Milliseconds with sensible precision. */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return "–";
  return n < 1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

/** `0.97×` */
export function times(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}×` : "–";
}

/** `+3.1 %` / `−12.0 %` of a ratio against 1. */
export function pct(ratio: number): string {
  if (!Number.isFinite(ratio)) return "–";
  const d = (ratio - 1) * 100;
  return `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)} %`;
}

export interface RunInfo {
  readonly command: string;
  readonly mode: "full" | "quick";
  readonly startedAt: Date;
  readonly cpuPlan: string;
  readonly etcdVersion: string;
  readonly packages: Record<string, string>;
  readonly seconds: number;
}

export function header(info: RunInfo): string {
  const cpu = cpus();
  const pkgs = Object.entries(info.packages).map(([k, v]) => `${k} ${v}`).join(", ");
  return [
    `- date: ${info.startedAt.toISOString()} (${info.mode} run, ${Math.round(info.seconds)} s)`,
    `- command: \`${info.command}\``,
    `- machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.versions.node}`,
    `- cores: ${info.cpuPlan}`,
    `- software: ${pkgs}, ${info.etcdVersion}`,
  ].join("\n");
}

export function render(info: RunInfo, sections: readonly Section[]): string {
  const out: string[] = [header(info), ""];
  for (const s of sections) {
    out.push(`### ${s.title}`, "");
    for (const part of s.body) out.push(part, "");
    if (s.goals.length > 0) out.push(goalsTable(s.goals), "");
  }
  return out.join("\n");
}
