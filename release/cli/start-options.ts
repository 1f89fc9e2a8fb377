/**
 * `protomesh release start`'s flags → a release spec. The stable side defaults to the labels of
 * the instances that are not the canary, when they all share one version.
 */
import { UsageError } from "../../cli/command";
import { checkAnalysis, defaultAnalysis, type AnalysisSpec, type NoDataPolicy } from "../analysis/analysis-spec";
import { parseDuration } from "../../runtime/duration";
import { blueGreenSteps, canarySteps, checkSpec, type ReleaseSpec } from "../spec";
import { parseLabels } from "./labels";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const START_OPTIONS = {
  canary: { type: "string" },
  "blue-green": { type: "string" },
  stable: { type: "string" },
  steps: { type: "string" },
  pause: { type: "string" },
  analysis: { type: "string" },
  prometheus: { type: "string" },
  interval: { type: "string" },
  count: { type: "string" },
  "failure-limit": { type: "string" },
  "min-requests": { type: "string" },
  "no-data": { type: "string" },
  "tester-header": { type: "string" },
  "sticky-header": { type: "string" },
  "auto-promote": { type: "boolean" },
} as const;

export const START_HELP = `  --canary L=V[,…]          canary release of the instances with these labels, or
  --blue-green L=V[,…]      blue-green release of them (green)
  --stable L=V[,…]          the running side (default: the other instances' version)
  --steps 5,25,50,100       canary weights (default 5,25,50,100)
  --pause DUR|forever       pause after each weight (default: none)
  --analysis default|none|FILE.json   analysis between steps (default: default)
  --prometheus URL          measure through this Prometheus (default: scrape the instances)
  --interval DUR            analysis interval (default 30s)
  --count N                 measurements per analysis step (default 3)
  --failure-limit N         failed measurements tolerated (default 0)
  --min-requests N          fewer canary requests in an interval is "no data" (default 20)
  --no-data fail|pause|skip what "no data" does (default pause)
  --tester-header K=V       requests with this header always go to the canary (green)
  --sticky-header NAME      keep a user on one side by this header
  --auto-promote            blue-green: switch after the analysis without waiting for promote`;

type Values = { [K in keyof typeof START_OPTIONS]?: (typeof START_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

function int(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

function analysisFrom(values: Values, cwd: string): AnalysisSpec | undefined {
  const choice = values.analysis ?? "default";
  if (choice === "none") return undefined;
  let base: Partial<AnalysisSpec> = {};
  if (choice !== "default") {
    try {
      base = JSON.parse(readFileSync(resolve(cwd, choice), "utf8")) as Partial<AnalysisSpec>;
    } catch (err) {
      throw new UsageError(`--analysis ${choice}: ${(err as Error).message}`);
    }
  }
  const noData = values["no-data"];
  if (noData !== undefined && !["fail", "pause", "skip"].includes(noData)) throw new UsageError(`--no-data must be fail, pause or skip`);
  const d = defaultAnalysis(base);
  const spec: AnalysisSpec = {
    ...d,
    source: values.prometheus !== undefined ? { kind: "prometheus", url: values.prometheus } : d.source,
    intervalMs: duration("interval", values.interval) ?? d.intervalMs,
    count: int("count", values.count, d.count, 1),
    failureLimit: int("failure-limit", values["failure-limit"], d.failureLimit, 0),
    minRequests: int("min-requests", values["min-requests"], d.minRequests, 0),
    noData: (noData as NoDataPolicy | undefined) ?? d.noData,
  };
  try {
    return checkAnalysis(spec);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The spec from the flags; `inferStable` finds the running side when `--stable` is absent. */
export async function specFrom(service: string, values: Values, cwd: string, inferStable: (canary: Record<string, string>) => Promise<Record<string, string>>): Promise<ReleaseSpec> {
  if ((values.canary === undefined) === (values["blue-green"] === undefined)) throw new UsageError("give exactly one of --canary or --blue-green");
  const strategy = values.canary !== undefined ? "canary" : "blueGreen";
  const canary = parseLabels(strategy === "canary" ? "--canary" : "--blue-green", (values.canary ?? values["blue-green"])!);
  const explicitStable = values.stable !== undefined ? parseLabels("--stable", values.stable) : undefined;
  const analysis = analysisFrom(values, cwd);
  let testers;
  if (values["tester-header"] !== undefined) {
    const [[k, v]] = Object.entries(parseLabels("--tester-header", values["tester-header"]));
    testers = { headers: { [k!.toLowerCase()]: { exact: v! } } };
  }
  let steps;
  if (strategy === "canary") {
    const weights = (values.steps ?? "5,25,50,100").split(",").map((w) => Number(w.trim()));
    if (weights.some((w) => !Number.isInteger(w) || w < 0 || w > 100)) throw new UsageError(`--steps: use weights 0–100 separated by commas, got ${JSON.stringify(values.steps)}`);
    const pauseMs = values.pause === "forever" ? Infinity : duration("pause", values.pause);
    steps = canarySteps({ weights, pauseMs, analysis: analysis !== undefined });
  } else {
    steps = [{ setWeight: 0 }, ...blueGreenSteps({ analysis: analysis !== undefined, autoPromote: values["auto-promote"] })];
  }
  // Asking the registry for the stable side comes after every check of the flags themselves.
  const stable = explicitStable ?? (await inferStable(canary));
  const spec: ReleaseSpec = { service, strategy, stable, canary, steps, analysis, testers, sticky: values["sticky-header"] ? { header: values["sticky-header"].toLowerCase() } : undefined };
  try {
    return checkSpec(spec);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
