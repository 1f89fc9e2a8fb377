/**
 * What a gRPC client allocates that outlives a scavenge: V8's sampling heap profiler with objects
 * collected by mark-compacts kept and those collected by scavenges left out, over a fixed number
 * of unary calls at c=1 (100-byte requests) to a raw grpc-js echo server in a child process. At
 * c=1 a call's objects are garbage long before the next scavenge, so what this lists is kept
 * alive past its call by something else: the bytes per call and the allocation stacks (three
 * frames) they come from.
 *
 *   node bin/run.js bench/scavenge-survivors.ts [raw|protomesh] [--calls 20000] [--top 18] [--balancer p2c] [--cut bind,listeners,wipe] [--gc --runs 3 --v8-flags="…"]
 *
 * `--cut` switches on measurement devices (not fixes) that sever the retainer paths found on Node 24
 * (docs/benchmarks.md, "Why finished calls outlive scavenges"): `bind` replaces
 * `AsyncResource.prototype.bind` with one that defines no `asyncResource` accessor (whose
 * old-generation AccessorPair keeps the bound `requestOnConnect` and so the stream alive);
 * `listeners` removes a closed HTTP/2 client stream's listeners, `wipe` clears all its own
 * properties (the stream itself stays alive through WritableState's old-generation `onwrite`
 * closure; these cut what hangs off it). `--gc` leaves the profiler off and reports instead, per
 * run (the client in a child process with `--trace-gc-nvp`), CPU µs per call, scavenges,
 * mark-compacts and the median bytes surviving a scavenge, then the medians of the runs;
 * `--v8-flags` are given to that client process (for example `--no-maglev`). `--balancer` sets the
 * protomesh client's balancer (`p2c`, `least_request`, `round_robin`, `pick_first`).
 */
import { fork } from "node:child_process";
import * as inspector from "node:inspector";
import * as path from "node:path";
import * as v8 from "node:v8";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "protomesh";
import type { BalancerOption } from "../runtime/balancing/service-config";
import { GreeterClient } from "../gen/examples/greeter/v1/greeter";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { payload, rawEchoHandlers } from "./echo-services";
import { takeGcStats, watchGc } from "./gc-watch";
import { median } from "./stats";
import { installCuts, parseCuts, type Cut } from "./retainer-cuts";
import { post, type ProfileNode } from "./heap-sampling";

/** One 100-byte unary call to the echo server at `port`, through a raw grpc-js or a protomesh client. */
function echoCall(kind: string, port: number, balancer: (BalancerOption & string) | undefined): () => Promise<unknown> {
  const name = payload(100);
  if (kind === "raw") {
    const client = new GreeterClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return () => new Promise<void>((resolve, reject) => client.sayHello({ name }, (err) => (err ? reject(err) : resolve())));
  }
  const client = createClient(GreeterDefinition, `127.0.0.1:${port}`, balancer ? { balancer } : {});
  return () => client.sayHello({ name });
}

function serve(): void {
  const server = new grpc.Server();
  const { service, implementation } = rawEchoHandlers();
  server.addService(service, implementation);
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      calls: { type: "string", default: "20000" },
      top: { type: "string", default: "18" },
      cut: { type: "string", default: "" },
      gc: { type: "boolean", default: false },
      runs: { type: "string", default: "3" },
      "v8-flags": { type: "string", default: "" },
      balancer: { type: "string" },
    },
  });
  const kind = positionals[0] ?? "raw";
  if (kind !== "raw" && kind !== "protomesh") throw new Error(`unknown client ${JSON.stringify(kind)}: raw or protomesh`);
  const calls = Number(values.calls);
  const top = Number(values.top);
  if (!(calls > 0) || !(top > 0)) throw new Error("--calls and --top need positive numbers");
  const cuts = parseCuts(values.cut);
  const balancer = values.balancer as (BalancerOption & string) | undefined;
  if (balancer !== undefined && (kind !== "protomesh" || !["p2c", "least_request", "round_robin", "pick_first"].includes(balancer))) throw new Error("--balancer takes p2c, least_request, round_robin or pick_first, with the protomesh client");
  if (values.gc) return gcRuns(kind, calls, Number(values.runs), cuts, values["v8-flags"].split(" ").filter(Boolean), balancer);
  installCuts(cuts);
  const server = fork(path.join(__dirname, "..", "bin", "run.js"), [__filename, "serve"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once("message", (m) => resolve(Number(m)));
      server.once("exit", (code) => reject(new Error(`echo server exited (${code})`)));
    });
    const one = echoCall(kind, port, balancer);
    for (let i = 0; i < 5_000; i++) await one(); // warm-up
    const session = new inspector.Session();
    session.connect();
    await post(session, "HeapProfiler.enable");
    await post(session, "HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
    for (let i = 0; i < calls; i++) await one();
    const { profile } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling");
    const bySite = new Map<string, number>();
    const walk = (node: ProfileNode, stack: string[]): void => {
      const frame = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").slice(-2).join("/")}:${node.callFrame.lineNumber + 1}`;
      const here = [...stack, frame].slice(-3);
      if (node.selfSize > 0) {
        const key = here.join(" < ");
        bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      }
      for (const child of node.children) walk(child, here);
    };
    walk(profile.head, []);
    let total = 0;
    for (const bytes of bySite.values()) total += bytes;
    console.log(`${kind} client${cuts.length ? ` (cut: ${cuts.join(", ")})` : ""}, ${calls} calls at c=1 (Node ${process.version}): ${Math.round(total / calls).toLocaleString("en")} bytes per call outlived a scavenge`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${String(Math.round(bytes / calls)).padStart(7)} B  ${site}`);
    }
  } finally {
    server.kill();
  }
}

interface GcRun {
  cpuMicros: number;
  scavenges: number;
  markCompacts: number;
  survived: number;
  /** Growth of the old generation over the measured calls (meaningful only without mark-compacts). */
  oldGrowth: number;
}

/** `--gc`: the client in a child process with `--trace-gc-nvp`, against a fresh server, `runs` times. */
async function gcRuns(kind: string, calls: number, runs: number, cuts: Cut[], v8Flags: string[], balancer: (BalancerOption & string) | undefined): Promise<void> {
  if (!(runs > 0)) throw new Error("--runs needs a positive number");
  const entry = path.join(__dirname, "..", "bin", "run.js");
  const results: GcRun[] = [];
  for (let r = 1; r <= runs; r++) {
    const server = fork(entry, [__filename, "serve"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        server.once("message", (m) => resolve(Number(m)));
        server.once("exit", (code) => reject(new Error(`echo server exited (${code})`)));
      });
      const client = fork(entry, [__filename, "drive", kind, String(port), String(calls), cuts.join(","), balancer ?? ""], {
        execArgv: [...v8Flags, "--trace-gc-nvp"],
        stdio: ["ignore", "pipe", "inherit", "ipc"],
      });
      let log = "";
      client.stdout!.setEncoding("utf8").on("data", (d: string) => (log += d));
      const run = await new Promise<GcRun>((resolve, reject) => {
        client.once("message", (m) => resolve(m as GcRun));
        client.once("exit", (code) => reject(new Error(`client exited (${code})`)));
      });
      const measured = log.slice(log.indexOf("scavenge-survivors: measuring"));
      const survived = [...measured.matchAll(/ gc=s .*?new_space_survived=(\d+)/g)].map((m) => Number(m[1]));
      run.survived = survived.length ? median(survived) : 0;
      results.push(run);
      const growth = run.markCompacts === 0 ? `, old generation +${Math.round(run.oldGrowth / calls)} B/call` : "";
      console.error(`run ${r}/${runs}: ${(run.cpuMicros / calls).toFixed(1)} µs/call, ${run.scavenges} scavenges, ${run.markCompacts} mark-compacts, ${Math.round(run.survived / 1024)} KB survived per scavenge (median)${growth}`);
      client.kill();
    } finally {
      server.kill();
    }
  }
  const m = (f: (x: GcRun) => number) => median(results.map(f));
  console.log(
    `${kind} client${balancer ? ` (${balancer})` : ""}${cuts.length ? ` (cut: ${cuts.join(", ")})` : ""}${v8Flags.length ? ` with ${v8Flags.join(" ")}` : ""}, ${calls} calls at c=1, median of ${runs} runs (Node ${process.version}): ` +
      `${(m((x) => x.cpuMicros) / calls).toFixed(1)} µs CPU per call, ${m((x) => x.scavenges)} scavenges, ${m((x) => x.markCompacts)} mark-compacts, ` +
      `${Math.round(m((x) => x.survived) / 1024).toLocaleString("en")} KB survived per scavenge`,
  );
}

/** The client side of `--gc`: warm-up, then `calls` calls counted. */
async function drive(kind: string, port: number, calls: number, cuts: Cut[], balancer: (BalancerOption & string) | undefined): Promise<void> {
  installCuts(cuts);
  watchGc();
  const one = echoCall(kind, port, balancer);
  for (let i = 0; i < 5_000; i++) await one();
  console.log("scavenge-survivors: measuring");
  const old = () => v8.getHeapSpaceStatistics().find((x) => x.space_name === "old_space")!.space_used_size;
  takeGcStats();
  const old0 = old();
  const u0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) await one();
  const u = process.cpuUsage(u0);
  const oldGrowth = old() - old0;
  const gc = takeGcStats();
  process.send!({ cpuMicros: u.user + u.system, scavenges: gc.scavenges, markCompacts: gc.markCompacts, survived: 0, oldGrowth } satisfies GcRun);
}

if (process.argv[2] === "serve") serve();
else if (process.argv[2] === "drive") void drive(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]), parseCuts(process.argv[6] ?? ""), (process.argv[7] || undefined) as (BalancerOption & string) | undefined);
else
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      console.error(`scavenge-survivors: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
