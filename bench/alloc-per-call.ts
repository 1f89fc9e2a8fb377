/**
 * Bytes allocated, CPU time and (under callgrind) instructions per unary call of one server
 * process, raw grpc-js or protomesh, driven by a raw grpc-js client at c=1 with 100-byte
 * requests. Allocation comes from V8's sampling heap profiler with objects collected by
 * scavenges and mark-compact included, so it counts everything allocated, not what survives;
 * it does not move with the machine's load, unlike CPU time.
 *
 *   node bin/run.js bench/alloc-per-call.ts raw|protomesh|protomesh-unscoped alloc|cpu|callgrind [calls]
 *
 * `alloc` prints bytes per call (`TOP=40` adds the functions that allocated most); `cpu` the
 * server's CPU µs per call; `callgrind` runs the server under `valgrind --tool=callgrind` and
 * prints instructions per call for `PASSES` (default 3) windows of `calls` calls each, after
 * `WARM` (default 10,000) uninstrumented calls; the dumps go to `CG_OUT` (default a temp dir).
 * `TRACE_RATIO=r` sets up the OpenTelemetry SDK in the server process (spans discarded), with root
 * spans sampled at `r` (the raw client sends no `traceparent`, so every server span is a root);
 * `TRACEPARENT=1` makes the client send a fresh unsampled `traceparent` with every call.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import * as inspector from "node:inspector";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createServer } from "protomesh";
import { GreeterService } from "../gen/examples/greeter/v1/greeter";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { payload, protomeshEchoHandlers, rawEchoHandlers } from "./echo-services";
import { traceIntoTheVoid } from "./trace-sink";
import { post, type ProfileNode } from "./heap-sampling";

const KINDS = ["raw", "protomesh", "protomesh-unscoped"] as const;
const MODES = ["alloc", "cpu", "callgrind"] as const;
type Kind = (typeof KINDS)[number];
type Mode = (typeof MODES)[number];

async function serve(kind: Kind): Promise<void> {
  // TRACE_RATIO=r: the OpenTelemetry SDK in the server process, root spans sampled at r.
  if (process.env.TRACE_RATIO) traceIntoTheVoid("alloc-per-call", Number(process.env.TRACE_RATIO));
  let port: number;
  if (kind === "raw") {
    const server = new grpc.Server();
    const { service, implementation } = rawEchoHandlers();
    server.addService(service, implementation);
    port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  } else {
    const server = createServer({ callScope: kind === "protomesh" });
    server.add(GreeterDefinition, protomeshEchoHandlers() as GreeterHandlers);
    port = await server.listen("127.0.0.1:0");
  }
  const session = new inspector.Session();
  session.connect();
  let cpu0 = process.cpuUsage();
  process.on("message", (m: string) => {
    void (async () => {
      if (m === "cpu-start") {
        cpu0 = process.cpuUsage();
        process.send!("ok");
      } else if (m === "cpu-stop") {
        const u = process.cpuUsage(cpu0);
        process.send!({ cpuMicros: u.user + u.system });
      } else if (m === "alloc-start") {
        await post(session, "HeapProfiler.enable");
        await post(session, "HeapProfiler.startSampling", { samplingInterval: 32, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        process.send!("ok");
      } else if (m === "alloc-stop") {
        const { profile } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling");
        let bytes = 0;
        const byFunction = new Map<string, number>();
        const walk = (n: ProfileNode) => {
          bytes += n.selfSize;
          if (n.selfSize > 0) {
            const where = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
            byFunction.set(where, (byFunction.get(where) ?? 0) + n.selfSize);
          }
          for (const c of n.children) walk(c);
        };
        walk(profile.head);
        process.send!({ bytes, top: [...byFunction].sort((a, b) => b[1] - a[1]) });
      } else if (m === "exit") {
        process.exit(0);
      }
    })();
  });
  process.send!({ port });
}

function drive(port: number): void {
  const Client = grpc.makeGenericClientConstructor(GreeterService as unknown as grpc.ServiceDefinition, "Greeter");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    sayHello(req: { name: string }, cb: (err: grpc.ServiceError | null) => void): void;
    sayHello(req: { name: string }, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void): void;
  };
  const name = payload(100);
  // TRACEPARENT=1: every call carries a fresh unsampled W3C `traceparent`, as a traced client's do.
  const withParent = process.env.TRACEPARENT === "1";
  const one = withParent
    ? () =>
        new Promise<void>((resolve, reject) => {
          const md = new grpc.Metadata();
          md.set("traceparent", `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-00`);
          client.sayHello({ name }, md, (err) => (err ? reject(err) : resolve()));
        })
    : () => new Promise<void>((resolve, reject) => client.sayHello({ name }, (err) => (err ? reject(err) : resolve())));
  process.on("message", (m: { calls: number }) => {
    void (async () => {
      for (let i = 0; i < m.calls; i++) await one();
      process.send!("done");
    })();
  });
  process.send!("ready");
}

function reply<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => child.once("message", (m) => resolve(m as T)));
}

async function main(kind: Kind, mode: Mode, calls: number): Promise<void> {
  const entry = path.join(__dirname, "..", "bin", "run.js");
  const warm = Number(process.env.WARM ?? 10_000);
  const cgOut = mode === "callgrind" ? path.join(process.env.CG_OUT ?? mkdtempSync(path.join(tmpdir(), "protomesh-alloc-cg-")), kind) : undefined;
  const server = cgOut
    ? fork(entry, [__filename, "serve", kind], { execPath: "valgrind", execArgv: ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${cgOut}`, `--log-file=${cgOut}.log`, process.execPath, ...process.execArgv] })
    : fork(entry, [__filename, "serve", kind]);
  const { port } = await reply<{ port: number }>(server);
  const client = fork(entry, [__filename, "drive", String(port)]);
  try {
    await reply(client);
    const run = async (n: number) => {
      client.send({ calls: n });
      await reply(client);
    };
    await run(warm);
    if (cgOut) {
      const control = (...args: string[]) => execFileSync("callgrind_control", [...args, String(server.pid)]);
      const counts: number[] = [];
      for (let pass = 1; pass <= Number(process.env.PASSES ?? 3); pass++) {
        control("-i", "on");
        control("-z");
        await run(calls);
        control("-d");
        control("-i", "off");
        const totals = /^(?:totals|summary):\s+(\d+)/m.exec(readFileSync(`${cgOut}.${pass}`, "utf8"));
        if (!totals) throw new Error(`no totals in ${cgOut}.${pass}`);
        counts.push(Number(totals[1]) / calls);
      }
      console.log(`${kind}: instructions per call ${counts.map((c) => Math.round(c).toLocaleString("en")).join(", ")} (dumps ${cgOut}.N)`);
      return;
    }
    server.send(`${mode}-start`);
    await reply(server);
    await run(calls);
    server.send(`${mode}-stop`);
    if (mode === "cpu") {
      const { cpuMicros } = await reply<{ cpuMicros: number }>(server);
      console.log(`${kind}: server CPU ${(cpuMicros / calls).toFixed(1)} µs per call`);
    } else {
      const { bytes, top } = await reply<{ bytes: number; top: [string, number][] }>(server);
      console.log(`${kind}: ${Math.round(bytes / calls).toLocaleString("en")} bytes allocated per call`);
      for (const [where, b] of top.slice(0, Number(process.env.TOP ?? 0))) console.log(`  ${String(Math.round(b / calls)).padStart(6)}  ${where}`);
    }
  } finally {
    server.send("exit");
    client.kill();
  }
}

const [role, arg, third] = process.argv.slice(2);
if (role === "serve") void serve(arg as Kind);
else if (role === "drive") drive(Number(arg));
else if (!KINDS.includes(role as Kind) || !MODES.includes(arg as Mode) || (third !== undefined && !(Number(third) > 0))) {
  console.error(`usage: node bin/run.js bench/alloc-per-call.ts ${KINDS.join("|")} ${MODES.join("|")} [calls]`);
  process.exitCode = 2;
} else {
  main(role as Kind, arg as Mode, Number(third ?? 10_000)).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
