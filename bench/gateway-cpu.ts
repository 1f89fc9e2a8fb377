/**
 * `node bin/run.js bench/gateway-cpu.ts [--rounds 5] [--seconds 4] [--connections 10] [--profile DIR] [--out FILE] [--compiled]`
 *
 * The gateway's cost per request in CPU time, next to a hand-written `node:http` handler
 * (JSON.parse + the same grpc-js client + JSON.stringify) in front of the same greeter, and next
 * to the same handler also forwarding a request id and `x-forwarded-for/-host/-proto` as the
 * gateway does (`fwd`), which separates the cost of that forwarding from the gateway's own.
 * Wall-clock throughput means little on a busy shared machine; the CPU a process spends per
 * request does not depend on how long it waited for a core, so it is the figure to compare
 * (if the front is CPU-bound, throughput is inversely proportional to it).
 *
 * - The greeter runs in its own process (`gateway-upstream.ts`), the gateway and the
 *   hand-written servers in this one, `wrk` in its own: the front's CPU is its own alone.
 * - Each round starts with a different front, so drift in the machine's load hits all three;
 *   the report gives every round, the medians, and the ratios of the medians.
 * - `--profile DIR`: one extra round first, profiled (V8 sampling profiler through the
 *   inspector), written to DIR/<front>.cpuprofile; it is left out of the medians. Summarize
 *   with `node bin/run.js bench/profile-summary.ts DIR/gateway.cpuprofile`.
 * - `--compiled`: this bench (all fronts) and the greeter run from esbuild bundles with plain
 *   `node`, as a deployment runs compiled JavaScript, instead of through tsx (whose `keepNames`
 *   wraps every closure the fronts create per request in a naming call).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import type * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Session } from "node:inspector/promises";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { createGateway } from "../gateway";
import { handWrittenServer } from "./gateway-hand";
import { median } from "./stats";
import { BenchWorker, runCompiled, runningCompiled, stopAllWorkers } from "./workers";

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "4" },
    connections: { type: "string", default: "10" },
    profile: { type: "string" },
    out: { type: "string" },
    compiled: { type: "boolean", default: false },
  },
});
const ROUNDS = positive("--rounds", flags.rounds);
const SECONDS = positive("--seconds", flags.seconds);
const CONNECTIONS = positive("--connections", flags.connections);
const PROFILE_DIR = flags.profile;
const OUT = flags.out;

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0)) throw new Error(`${name} needs a positive number, got ${JSON.stringify(text)}`);
  return n;
}

type Front = "gateway" | "hand" | "forwarding";
const FRONTS: readonly Front[] = ["gateway", "hand", "forwarding"];

interface Sample {
  readonly requests: number;
  readonly errors: number;
  /** CPU µs per request of the front process (gateway or hand-written server). */
  readonly front: number;
  /** CPU µs per request of the greeter's process. */
  readonly upstream: number;
}

interface WrkRun {
  /** Completed and failed requests, once wrk has exited. */
  readonly done: Promise<{ requests: number; errors: number }>;
}

/**
 * Starts wrk (POST, the greeter's JSON body). Returns once the child exists: forking this
 * large process costs it tens of milliseconds of CPU, which must not be counted as the
 * front's (callers take their CPU reading after this returns).
 */
function startWrk(url: string, seconds: number): WrkRun {
  const script = path.join(os.tmpdir(), `gw-cpu-${process.pid}.lua`);
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"name":"bench"}'\nwrk.headers["Content-Type"] = "application/json"\n`);
  // Asynchronous: the servers under test run on this process's event loop.
  const child = spawn("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "-s", script, url], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const done = new Promise<{ requests: number; errors: number }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}`));
      const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      resolve({ requests, errors: non2xx + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0) });
    });
  });
  return { done };
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function measure(url: string, upstream: BenchWorker): Promise<Sample> {
  const up0 = await upstream.call<number>("cpu");
  const run = startWrk(url, SECONDS);
  const front0 = cpuNow();
  const r = await run.done;
  const front = cpuNow() - front0;
  const up = (await upstream.call<number>("cpu")) - up0;
  return { requests: r.requests, errors: r.errors, front: front / r.requests, upstream: up / r.requests };
}

async function profiled(url: string, upstream: BenchWorker, file: string): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  // Finer than the default 1 ms: on a busy machine the front gets few samples per second otherwise.
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  const sample = await measure(url, upstream);
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  fs.writeFileSync(file, JSON.stringify(profile));
  // The round's figures beside the profile, to turn its shares into µs per request.
  fs.writeFileSync(file.replace(/\.cpuprofile$/, ".json"), JSON.stringify(sample));
}

async function main(): Promise<void> {
  if (flags.compiled && !runningCompiled()) {
    const code = await runCompiled(__filename, process.argv.slice(2));
    if (code !== 0) throw new Error(`the compiled run exited with code ${code}`);
    return;
  }
  const lines: string[] = [];
  const out = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  const upstream = await BenchWorker.start("greeter", "gateway-upstream.ts", { compiled: runningCompiled() });
  const port = await upstream.call<number>("listen");
  const address = `127.0.0.1:${port}`;
  const gw = await createGateway({ upstreams: [{ target: address, definitions: [HttpGreeterDefinition] }], accessLog: false });
  const gwPort = await gw.listen(0);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const hand: http.Server = handWrittenServer(client);
  const forwarding: http.Server = handWrittenServer(client, { forward: true });
  const portOf = async (s: http.Server) => {
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return (s.address() as { port: number }).port;
  };
  const urls: Record<Front, string> = { gateway: `http://127.0.0.1:${gwPort}/v1/hello`, hand: `http://127.0.0.1:${await portOf(hand)}/`, forwarding: `http://127.0.0.1:${await portOf(forwarding)}/` };

  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");
  out(`Gateway CPU per request, ${new Date().toISOString()}, Node ${process.version}${runningCompiled() ? " (compiled: esbuild bundles, plain node)" : " (through tsx)"}, ${os.cpus().length} cores, load average ${load()} at the start; wrk -c${CONNECTIONS}, ${SECONDS} s per run, ${ROUNDS} rounds.`);
  // Warm both paths (JIT, connections) before anything is counted.
  for (const u of Object.values(urls)) await startWrk(u, 2).done;
  if (PROFILE_DIR !== undefined) {
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    for (const front of FRONTS) await profiled(urls[front], upstream, path.join(PROFILE_DIR, `${front}.cpuprofile`));
    out(`Profiles (an extra round, not counted): ${FRONTS.map((f) => `${PROFILE_DIR}/${f}.cpuprofile`).join(", ")}`);
  }

  const samples: Record<Front, Sample[]> = { gateway: [], hand: [], forwarding: [] };
  out("");
  out("Fronts: `gateway`; `hand` = the hand-written handler; `fwd` = the same handler also forwarding a request id and `x-forwarded-for/-host/-proto` as the gateway does. Each cell: front / greeter µs of CPU per request.");
  out("");
  out("| round | gateway | hand | fwd | gateway req/s | hand req/s | fwd req/s |");
  out("|---|---|---|---|---|---|---|");
  for (let round = 1; round <= ROUNDS; round++) {
    // Each round starts with a different front, so drift in the machine's load hits all three.
    const order = FRONTS.map((_, i) => FRONTS[(i + round - 1) % FRONTS.length]);
    for (const front of order) samples[front].push(await measure(urls[front], upstream));
    const [g, h, f] = FRONTS.map((front) => samples[front][round - 1]);
    const errors = g.errors + h.errors + f.errors > 0 ? ` (errors: gateway ${g.errors}, hand ${h.errors}, fwd ${f.errors})` : "";
    const cell = (s: Sample) => `${s.front.toFixed(0)} / ${s.upstream.toFixed(0)}`;
    out(`| ${round} | ${cell(g)} | ${cell(h)} | ${cell(f)} | ${(g.requests / SECONDS).toFixed(0)} | ${(h.requests / SECONDS).toFixed(0)} | ${(f.requests / SECONDS).toFixed(0)}${errors} |`);
  }
  const med = (front: Front, pick: (s: Sample) => number) => median(samples[front].map(pick));
  const gFront = med("gateway", (s) => s.front);
  const hFront = med("hand", (s) => s.front);
  const fFront = med("forwarding", (s) => s.front);
  const gTotal = med("gateway", (s) => s.front + s.upstream);
  const hTotal = med("hand", (s) => s.front + s.upstream);
  const fTotal = med("forwarding", (s) => s.front + s.upstream);
  const pairRatios = samples.gateway.map((g, i) => g.front / samples.hand[i].front);
  out("");
  out(`- front process, median CPU per request: gateway ${gFront.toFixed(0)} µs, hand-written ${hFront.toFixed(0)} µs → gateway/hand **${(gFront / hFront).toFixed(2)}×** (per round: ${pairRatios.map((r) => r.toFixed(2)).join(", ")}; their median ${median(pairRatios).toFixed(2)}×)`);
  out(`- front + greeter, median CPU per request: gateway ${gTotal.toFixed(0)} µs, hand-written ${hTotal.toFixed(0)} µs → CPU-bound throughput of the gateway ≈ **${(hTotal / gTotal).toFixed(2)}×** the hand-written handler's`);
  out(`- with forwarding: front ${fFront.toFixed(0)} µs, front + greeter ${fTotal.toFixed(0)} µs → gateway/fwd front **${(gFront / fFront).toFixed(2)}×**, CPU-bound throughput of the gateway ≈ **${(fTotal / gTotal).toFixed(2)}×** the forwarding handler's (forwarding alone: hand/fwd ${(hTotal / fTotal).toFixed(2)}×)`);
  out(`- load average at the end: ${load()}`);

  await gw.close();
  hand.close();
  forwarding.close();
  client.close();
  await stopAllWorkers();
  if (OUT) fs.writeFileSync(OUT, `${lines.join("\n")}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[gateway cpu bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void stopAllWorkers().finally(() => process.exit(1));
  },
);
