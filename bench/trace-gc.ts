/**
 * What tracing costs a protomesh client and server end to end, and where it goes: CPU per call
 * on each side and the garbage collector's work in each process, over a fixed number of unary
 * calls at c=1 (protomesh client → protomesh server, 100-byte requests, static address, no etcd).
 *
 *   node bin/run.js bench/trace-gc.ts [--calls 30000] [--runs 3] [--client-ratio R] [--server-ratio R] [--v8-flags="…"] [--raw-client]
 *
 * Each run measures the untraced pair and the traced pair one after the other (fresh processes for
 * each), so the two are compared within the run. A ratio sets up the OpenTelemetry SDK in that
 * process (parent-based sampler with root spans sampled at R, spans dropped); leave one out to keep
 * that side untraced. `--v8-flags` are passed to every process (for example
 * `--no-allocation-site-pretenuring`). Per side it prints CPU µs per call, scavenges and
 * mark-compacts during the measured calls, and the bytes that survived the last scavenge (V8's
 * `new_space_survived`, read from `--trace-gc-nvp`): the figure that shows objects kept alive past
 * a call. `--raw-client` adds a row with a raw grpc-js client (untraced) against the same server.
 * `--wipe-server-streams` is a measurement device, not a fix: the server clears every own property
 * of an HTTP/2 stream once it has closed, which severs what the stream's old-generation `onwrite`
 * closure keeps alive (docs/benchmarks.md, "Why finished calls outlive scavenges").
 * `--cut-client bind,wipe` installs the client-side devices of `bench/retainer-cuts.ts` in every
 * client process; with both, what tracing itself costs is no longer hidden by Node's retention.
 * `--sdk-only` adds a row with the SDK set up as in the traced pair (provider, context manager,
 * propagators) but the tracing interceptors switched off: what registering the SDK costs alone.
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createClient, createServer } from "protomesh";
import { GreeterClient as RawGreeter } from "../gen/examples/greeter/v1/greeter";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { payload, protomeshEchoHandlers } from "./echo-services";
import { takeGcStats, watchGc } from "./gc-watch";
import { median } from "./stats";
import { installCuts, parseCuts, wipeServerStreams } from "./retainer-cuts";
import { traceIntoTheVoid } from "./trace-sink";
import { enableTracing } from "../runtime/tracing-interceptor";

/** Sets up the SDK at the given ratio; with `NO_SPANS=1` the interceptors then make no spans. */
function traceThisSide(serviceName: string): void {
  if (!process.env.TRACE_RATIO) return;
  traceIntoTheVoid(serviceName, Number(process.env.TRACE_RATIO));
  if (process.env.NO_SPANS === "1") enableTracing(false);
}

interface Side {
  cpuMicros: number;
  scavenges: number;
  markCompacts: number;
}

/** Starts counting: the CPU time so far, and the collections from now on. */
function startCount(): number {
  takeGcStats();
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** CPU time and collections since {@link startCount}. */
function countSince(cpuAtStart: number): Side {
  const u = process.cpuUsage();
  const gc = takeGcStats();
  return { cpuMicros: u.user + u.system - cpuAtStart, scavenges: gc.scavenges, markCompacts: gc.markCompacts };
}

async function serve(): Promise<void> {
  watchGc();
  if (process.env.WIPE_SERVER_STREAMS === "1") wipeServerStreams();
  traceThisSide("trace-gc-server");
  const server = createServer({});
  server.add(GreeterDefinition, protomeshEchoHandlers() as GreeterHandlers);
  const port = await server.listen("127.0.0.1:0");
  let start = startCount();
  process.on("message", (m: string) => {
    if (m === "start") {
      start = startCount();
      process.send!("ok");
    } else if (m === "stop") {
      process.send!(countSince(start));
    } else {
      process.exit(0);
    }
  });
  process.send!(port);
}

async function drive(port: number): Promise<void> {
  watchGc();
  installCuts(parseCuts(process.env.CUT_CLIENT ?? ""));
  traceThisSide("trace-gc-client");
  const name = payload(100);
  let client: { sayHello(req: { name: string }): Promise<unknown> } = createClient(GreeterDefinition, `127.0.0.1:${port}`);
  if (process.env.RAW_CLIENT === "1") {
    const raw = new RawGreeter(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    client = { sayHello: (req) => new Promise((resolve, reject) => raw.sayHello(req, (err, res) => (err ? reject(err) : resolve(res)))) };
  }
  process.on("message", (n: number) => {
    if (n < 0) process.exit(0);
    void (async () => {
      const start = startCount();
      for (let i = 0; i < n; i++) await client.sayHello({ name });
      process.send!(countSince(start));
    })();
  });
  process.send!("ready");
}

function reply<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m as T));
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) before answering`)));
  });
}

/** The last `new_space_survived=` figure of a `--trace-gc-nvp` log. */
function lastSurvived(log: string): number | undefined {
  const all = [...log.matchAll(/gc=s .*?new_space_survived=(\d+)/g)];
  return all.length ? Number(all[all.length - 1]![1]) : undefined;
}

async function pair(calls: number, clientRatio: string | undefined, serverRatio: string | undefined, v8Flags: string[], rawClient = false, wipeStreams = false, noSpans = false): Promise<{ client: Side; server: Side; survived: [number | undefined, number | undefined] }> {
  const entry = path.join(__dirname, "..", "bin", "run.js");
  const logs = ["", ""];
  const start = (role: string, ratio: string | undefined, args: string[], i: number): ChildProcess => {
    const child = fork(entry, [__filename, role, ...args], {
      execArgv: [...v8Flags, "--trace-gc-nvp"],
      env: { ...process.env, TRACE_RATIO: ratio ?? "", RAW_CLIENT: rawClient ? "1" : "", WIPE_SERVER_STREAMS: wipeStreams ? "1" : "", NO_SPANS: noSpans ? "1" : "" },
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (logs[i] += d));
    return child;
  };
  const server = start("serve", serverRatio, [], 1);
  try {
    const port = await reply<number>(server);
    const client = start("drive", clientRatio, [String(port)], 0);
    try {
      await reply(client);
      client.send(Math.min(10_000, calls)); // warm-up
      await reply(client);
      logs[0] = logs[1] = "";
      server.send("start");
      await reply(server);
      client.send(calls);
      const c = await reply<Side>(client);
      server.send("stop");
      const s = await reply<Side>(server);
      return { client: c, server: s, survived: [lastSurvived(logs[0]!), lastSurvived(logs[1]!)] };
    } finally {
      client.send(-1);
    }
  } finally {
    server.send("exit");
  }
}

const USAGE = 'usage: node bin/run.js bench/trace-gc.ts [--calls 30000] [--runs 3] [--client-ratio R] [--server-ratio R] [--v8-flags="…"] [--raw-client] [--wipe-server-streams] [--cut-client bind,listeners,wipe] [--sdk-only]';

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      calls: { type: "string", default: "30000" },
      runs: { type: "string", default: "3" },
      "client-ratio": { type: "string" },
      "server-ratio": { type: "string" },
      "v8-flags": { type: "string", default: "" },
      "raw-client": { type: "boolean", default: false },
      "wipe-server-streams": { type: "boolean", default: false },
      "cut-client": { type: "string", default: "" },
      "sdk-only": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const calls = Number(values.calls);
  const runs = Number(values.runs);
  let clientRatio = values["client-ratio"];
  let serverRatio = values["server-ratio"];
  if (clientRatio === undefined && serverRatio === undefined) clientRatio = serverRatio = "0.1";
  for (const [name, v] of [["--client-ratio", clientRatio], ["--server-ratio", serverRatio]] as const) {
    if (v !== undefined && !(Number(v) >= 0 && Number(v) <= 1)) throw new Error(`${name} must be between 0 and 1, got ${v}`);
  }
  if (!(calls > 0) || !(runs > 0)) throw new Error("--calls and --runs must be positive numbers");
  const withRaw = values["raw-client"];
  // Checked here, installed in each client process (through the environment).
  const clientCuts = parseCuts(values["cut-client"]).join(",");
  process.env.CUT_CLIENT = clientCuts;
  const v8Flags = values["v8-flags"].split(" ").filter(Boolean);
  const rows: { label: string; results: Awaited<ReturnType<typeof pair>>[] }[] = [
    { label: "untraced", results: [] },

    { label: `traced (client ${clientRatio ?? "off"}, server ${serverRatio ?? "off"})`, results: [] },
    ...(withRaw ? [{ label: "untraced, raw grpc-js client", results: [] }] : []),
    ...(values["sdk-only"] ? [{ label: "SDK set up at the same ratios, interceptors make no spans", results: [] }] : []),
  ];
  for (let r = 1; r <= runs; r++) {
    const wipe = values["wipe-server-streams"];
    rows[0]!.results.push(await pair(calls, undefined, undefined, v8Flags, false, wipe));
    rows[1]!.results.push(await pair(calls, clientRatio, serverRatio, v8Flags, false, wipe));
    if (withRaw) rows[2]!.results.push(await pair(calls, undefined, undefined, v8Flags, true, wipe));
    if (values["sdk-only"]) rows[rows.length - 1]!.results.push(await pair(calls, clientRatio, serverRatio, v8Flags, false, wipe, true));
    const kb = (v: number | undefined) => (v === undefined ? "?" : `${Math.round(v / 1024)} KB`);
    console.error(`run ${r}/${runs}: ${rows.map(({ label, results }) => { const x = results[results.length - 1]!; return `${label}: ${(x.client.cpuMicros / calls).toFixed(0)}/${(x.server.cpuMicros / calls).toFixed(0)} µs, survived ${kb(x.survived[0])}/${kb(x.survived[1])}`; }).join("; ")}`);
  }
  const per = (xs: number[]) => median(xs);
  console.log(`${calls} calls per run at c=1, ${runs} runs, medians (Node ${process.version}${v8Flags.length ? `, every process with ${v8Flags.join(" ")}` : ""}${values["wipe-server-streams"] ? ", server streams wiped once closed" : ""}${clientCuts ? `, client cuts: ${clientCuts}` : ""}):\n`);
  console.log("| pair | client µs/call | server µs/call | client scavenges / mark-compacts | server scavenges / mark-compacts | survived last scavenge, client / server |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const { label, results } of rows) {
    const side = (k: "client" | "server") => ({
      cpu: per(results.map((x) => x[k].cpuMicros / calls)),
      sc: per(results.map((x) => x[k].scavenges)),
      mc: per(results.map((x) => x[k].markCompacts)),
    });
    const c = side("client");
    const s = side("server");
    const kb = (i: 0 | 1) => `${Math.round(per(results.map((x) => x.survived[i] ?? NaN)) / 1024).toLocaleString("en")} KB`;
    console.log(`| ${label} | ${c.cpu.toFixed(1)} | ${s.cpu.toFixed(1)} | ${c.sc} / ${c.mc} | ${s.sc} / ${s.mc} | ${kb(0)} / ${kb(1)} |`);
  }
}

const [role, arg] = process.argv.slice(2);
if (role === "serve") void serve();
else if (role === "drive") void drive(Number(arg));
else
  main(process.argv.slice(2)).catch((err) => {
    console.error(`trace-gc: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
