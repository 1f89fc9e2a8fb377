/**
 * Reads a V8 CPU profile (`npm run bench -- --profile DIR` writes one per worker) and
 * prints where the time went: self time by area (grpc-js, protomesh runtime, generated
 * code, Node internals, GC…), the hottest functions, and inclusive time of functions in
 * protomesh's own files.
 *
 *   node bin/run.js bench/profile-summary.ts DIR/protomesh-client.cpuprofile [--top 30] [--skip-ms 10000]
 *
 * Files run through tsx are compiled onto a line or two, so their functions are told apart
 * by column; named functions and methods keep their names.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the stack a frame belongs to. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  if (url.includes("node_modules/@grpc/grpc-js/")) return "grpc-js";
  if (url.includes("node_modules/nice-grpc")) return "nice-grpc";
  if (url.includes("node_modules/@opentelemetry/")) return "opentelemetry";
  if (url.includes("node_modules/@bufbuild/protobuf/")) return "protobuf wire (@bufbuild/protobuf)";
  if (url.includes("node_modules/")) return `other package: ${url.split("node_modules/")[1]!.split("/").slice(0, url.includes("node_modules/@") ? 2 : 1).join("/")}`;
  if (url.startsWith("node:")) {
    const module = url.replace(/^node:(internal\/)?/, "").split("/")[0]!;
    return `Node: ${module}`;
  }
  const match = /\/(runtime|registry|gen|bench|tracing)\//.exec(url);
  if (match) return match[1] === "runtime" ? `protomesh runtime/${url.split("/runtime/")[1]}` : match[1] === "gen" ? "generated code (gen/)" : match[1]!;
  return url;
}

const ROOT_URL = `file://${path.join(__dirname, "..")}/`;

/** `name file:line:column` (TypeScript run through tsx is compiled onto few lines: the column tells functions apart). */
function label(frame: CallFrame): string {
  const file = frame.url.replace(ROOT_URL, "").replace(/^.*\/node_modules\//, "");
  return `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}:${frame.columnNumber + 1}`;
}

/** Summary of the samples taken after the first `skipMs` (start-up: loading and compiling modules). */
export function summarize(profile: CpuProfile, top: number, skipMs = 0): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const counted: boolean[] = [];
  let total = 0;
  let clock = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    clock += dt;
    counted[i] = clock >= skipMs * 1000;
    if (!counted[i]) continue;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((n, [, t]) => n + t, 0);
  const busy = total - idle;

  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, t] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === "(idle)") continue;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + t);
    functions.set(label(frame), (functions.get(label(frame)) ?? 0) + t);
  }

  // Inclusive time of protomesh's own functions, counted once per sample even when recursive.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    if (!counted[i]) continue;
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      if (!/\/(runtime|registry)\//.test(frame.url)) continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  }

  const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
  const lines = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled`, "", "self time by area:"];
  for (const [area, t] of [...areas].sort((a, b) => b[1] - a[1])) lines.push(`  ${pct(t)}  ${area}`);
  lines.push("", `hottest functions (self):`);
  for (const [name, t] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${name}`);
  lines.push("", "protomesh functions (inclusive):");
  for (const [name, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${name}`);
  return lines.join("\n");
}

// Run directly (`node bin/run.js bench/profile-summary.ts …`), not when imported.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === __filename) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
  const skipAt = args.indexOf("--skip-ms");
  const skipMs = skipAt >= 0 ? Number(args.splice(skipAt, 2)[1]) : 0;
  if (args.length === 0) {
    process.stderr.write("usage: node bin/run.js bench/profile-summary.ts FILE.cpuprofile… [--top N] [--skip-ms MS]\n");
    process.exit(2);
  }
  for (const file of args) {
    process.stdout.write(`== ${file}\n${summarize(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top, skipMs)}\n\n`);
  }
}
