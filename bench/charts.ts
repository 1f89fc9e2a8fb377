/**
 * SVG charts from the bench's JSON (`--json`): protomesh's ratio to raw grpc-js per
 * scenario and Node version, and latency percentiles per contender. Plain SVG strings,
 * no chart library. `npm run bench -- --out r.md --json r.json` writes them beside the
 * report; `node bin/run.js bench/charts.ts OUT_DIR a.json [b.json …]` redraws them from
 * saved runs (one per Node version) for docs/benchmarks.md.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { median, ratios } from "./stats";

/** What the charts read from a run's JSON. */
export interface RunJson {
  node?: string;
  sections: { title: string; data: unknown }[];
}

interface Window {
  rate: number;
  p50Ms: number;
  p99Ms: number;
}

type ByContender = Record<string, Window[]>;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

/** Horizontal grouped bars: one row per category, one bar per series; optional vertical marks (1.0×, a goal). */
export function barChart(options: { title: string; unit: string; categories: string[]; series: { name: string; values: (number | undefined)[] }[]; marks?: { at: number; label: string }[]; digits?: number }): string {
  const { title, unit, categories, series, marks = [], digits = 2 } = options;
  const labelW = 250;
  const plotW = 420;
  const barH = 14;
  const rowH = series.length * barH + 10;
  const top = 44;
  const height = top + categories.length * rowH + 28 + 14 * marks.length;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const maxV = Math.max(...all, ...marks.map((m) => m.at)) * 1.12 || 1;
  const x = (v: number) => labelW + (v / maxV) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 80}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const lx = labelW + i * 150;
    out.push(`<rect x="${lx}" y="28" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${lx + 14}" y="37">${esc(s.name)}</text>`);
  });
  categories.forEach((c, ci) => {
    const y0 = top + ci * rowH;
    out.push(`<text x="${labelW - 6}" y="${y0 + (series.length * barH) / 2 + 4}" text-anchor="end">${esc(c)}</text>`);
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v)) return;
      const y = y0 + si * barH;
      out.push(`<rect x="${labelW}" y="${y}" width="${(x(v) - labelW).toFixed(1)}" height="${barH - 2}" fill="${PALETTE[si % PALETTE.length]}"/>`);
      out.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + barH - 4}">${v.toFixed(digits)}${esc(unit)}</text>`);
    });
  });
  const bottom = top + categories.length * rowH;
  marks.forEach((m, i) => {
    out.push(`<line x1="${x(m.at).toFixed(1)}" y1="${top - 4}" x2="${x(m.at).toFixed(1)}" y2="${bottom + 4 + 14 * i}" stroke="#333" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${x(m.at).toFixed(1)}" y="${bottom + 16 + 14 * i}" text-anchor="middle">${esc(m.label)}</text>`);
  });
  out.push(`<line x1="${labelW}" y1="${top - 4}" x2="${labelW}" y2="${bottom}" stroke="#333"/>`, "</svg>");
  return out.join("\n") + "\n";
}

function section(run: RunJson, prefix: string): unknown {
  return run.sections.find((s) => s.title.startsWith(prefix))?.data;
}

/** Median of per-round ratios `id / base` of `f`, or undefined if either is missing. */
function ratioOf(data: ByContender | undefined, id: string, base: string, f: (w: Window) => number): number | undefined {
  const own = data?.[id];
  const ref = data?.[base];
  if (!own || !ref) return undefined;
  return median(ratios(own.map(f), ref.map(f)));
}

/** protomesh ÷ raw grpc-js throughput per scenario, one series per run (Node version). */
export function ratioChart(runs: RunJson[]): string {
  const categories = ["unary 100 B, c=1", "unary 100 B, c=100", "unary 64 KiB", "unary 1 MiB", "server streaming 1 KiB"];
  const pick = (run: RunJson): (number | undefined)[] => {
    const unary = section(run, "1. Unary") as Record<string, ByContender> | undefined;
    const large = section(run, "1b.") as Record<string, ByContender> | undefined;
    const streaming = section(run, "3. Server streaming") as ByContender | undefined;
    const rate = (w: Window) => w.rate;
    return [
      ratioOf(unary?.["1"], "protomesh", "raw", rate),
      ratioOf(unary?.["100"], "protomesh", "raw", rate),
      ratioOf(large?.[String(64 * 1024)], "protomesh", "raw", rate),
      ratioOf(large?.[String(1024 * 1024)], "protomesh", "raw", rate),
      ratioOf(streaming, "protomesh", "raw", rate),
    ];
  };
  return barChart({
    title: "protomesh throughput ÷ raw grpc-js (same rounds; higher is better)",
    unit: "×",
    categories,
    series: runs.map((r) => ({ name: `Node ${r.node ?? "?"}`, values: pick(r) })),
    marks: [
      { at: 1, label: "raw" },
      { at: 0.95, label: "goal 0.95" },
    ],
  });
}

/** p50 and p99 latency per contender at one concurrency, from one run. */
export function latencyChart(run: RunJson, concurrency: 1 | 100, labels: Record<string, string>): string {
  const unary = (section(run, "1. Unary") as Record<string, ByContender> | undefined)?.[String(concurrency)] ?? {};
  const ids = Object.keys(labels).filter((id) => unary[id]);
  return barChart({
    title: `Unary 100 B latency at concurrency ${concurrency}, Node ${run.node ?? "?"} (ms, medians over rounds; lower is better)`,
    unit: " ms",
    categories: ids.map((id) => labels[id]!),
    series: [
      { name: "p50", values: ids.map((id) => median(unary[id]!.map((w) => w.p50Ms))) },
      { name: "p99", values: ids.map((id) => median(unary[id]!.map((w) => w.p99Ms))) },
    ],
    digits: concurrency === 1 ? 3 : 1,
  });
}

const LATENCY_LABELS: Record<string, string> = {
  raw: "raw grpc-js",
  protomesh: "protomesh",
  nice: "nice-grpc",
  "protomesh-ch": "protomesh, consistent_hash",
  "protomesh-traced": "protomesh, tracing on",
  "protomesh-sampled": "protomesh, tracing 10 %",
  "otel-raw": "raw + instrumentation-grpc",
};

/** Writes every chart for `runs` (the first is the primary run, for latency) into `dir`; returns the file names. */
export function writeCharts(dir: string, runs: RunJson[], prefix = "bench"): string[] {
  const files: [string, string][] = [[`${prefix}-ratios.svg`, ratioChart(runs)]];
  if (section(runs[0]!, "1. Unary")) {
    files.push([`${prefix}-latency-c1.svg`, latencyChart(runs[0]!, 1, LATENCY_LABELS)], [`${prefix}-latency-c100.svg`, latencyChart(runs[0]!, 100, LATENCY_LABELS)]);
  }
  for (const [name, svg] of files) writeFileSync(path.join(dir, name), svg);
  return files.map(([name]) => name);
}

// Run directly (`node bin/run.js bench/charts.ts …`), not when imported by main.ts.
if (path.resolve(process.argv[1] ?? "") === __filename) {
  const [dir, ...jsons] = process.argv.slice(2);
  if (!dir || jsons.length === 0) {
    process.stderr.write("usage: node bin/run.js bench/charts.ts OUT_DIR run.json [run2.json …]   (first run: the primary one)\n");
    process.exit(2);
  }
  const runs = jsons.map((f) => JSON.parse(readFileSync(f, "utf8")) as RunJson);
  for (const name of writeCharts(dir, runs, "benchmarks")) process.stdout.write(`${path.join(dir, name)}\n`);
}
