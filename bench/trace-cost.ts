/**
 * What tracing costs per call inside one process, network taken out: a protomesh server's
 * unary handler path and a protomesh client's unary call (both fed fake grpc-js calls, as in
 * `overhead-worker.ts`), with the OpenTelemetry SDK set up by `setupTracing` (spans dropped).
 *
 *   node bin/run.js bench/trace-cost.ts off|ratio|all|none      # CPU µs per call, median of 5 runs
 *   CG=1 N=20000 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg node bin/run.js bench/trace-cost.ts ratio
 *                                                              # instructions: cg.1 server, cg.2 client (divide by N)
 *
 * Modes: `off` no SDK (tracing off, the default stack); `all` every call sampled; `ratio`
 * ParentBased(TraceIdRatio(0.1)), the client's spans roots and the server's calls arriving
 * with a `traceparent` that is sampled one time in ten; `none` nothing sampled.
 * One process per mode: the SDK, once set up, stays for the process.
 */
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { createClient, createServer } from "protomesh";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { HelloReply } from "../gen/examples/greeter/v1/greeter";
import { payload, protomeshEchoHandlers } from "./echo-services";
import { traceIntoTheVoid } from "./trace-sink";

const MODES = { off: undefined, all: 1, ratio: 0.1, none: 0 } as const;
type Mode = keyof typeof MODES;

const mode = (process.argv[2] ?? "off") as Mode;
if (!(mode in MODES)) {
  console.error(`usage: node bin/run.js bench/trace-cost.ts ${Object.keys(MODES).join("|")}`);
  process.exit(2);
}
const calls = Number(process.env.N ?? 100_000);
if (!Number.isInteger(calls) || calls <= 0) {
  console.error(`N must be a positive integer, got "${process.env.N}"`);
  process.exit(2);
}
/** Under callgrind (started with --instr-atstart=no): count only the measured loops, one dump per side. */
const underCallgrind = process.env.CG === "1";
const callgrind = (...args: string[]) => new Promise<void>((resolve) => spawn("callgrind_control", [...args, String(process.pid)], { stdio: "ignore" }).once("close", () => resolve()));

const ratio = MODES[mode];
if (ratio !== undefined) traceIntoTheVoid("bench-trace-cost", ratio);

const name = payload(100);
const replyBytes = Buffer.from(HelloReply.encode({ message: name, servedBy: "", at: undefined }).finish());
type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

/** The grpc-js handler protomesh registers for `sayHello`. */
function serverHandler(): UnaryHandler {
  const server = createServer({});
  let captured: UnaryHandler | undefined;
  server.grpc.addService = (_service, implementation) => {
    if (typeof implementation.sayHello === "function") captured = implementation.sayHello as UnaryHandler;
  };
  server.add(GreeterDefinition, protomeshEchoHandlers() as GreeterHandlers);
  if (!captured) throw new Error("trace-cost: sayHello handler not captured");
  return captured;
}

let seq = 0;
/** A served call as a traced caller sends it: its own trace id, sampled as the mode says. */
function fakeServerCall(): grpc.ServerUnaryCall<unknown, unknown> {
  const metadata = new grpc.Metadata();
  if (ratio !== undefined) {
    const n = seq++;
    const sampled = ratio === 1 || (ratio > 0 && n % Math.round(1 / ratio) === 0);
    metadata.set("traceparent", `00-${(n + 1).toString(16).padStart(32, "a")}-${"b".repeat(16)}-${sampled ? "01" : "00"}`);
  }
  const call = Object.assign(new EventEmitter(), { request: { name }, metadata, cancelled: false, getDeadline: () => Number.POSITIVE_INFINITY, getPeer: () => "ipv4:127.0.0.1:40000", sendMetadata: () => {} });
  return call as unknown as grpc.ServerUnaryCall<unknown, unknown>;
}

const FAKE_CALL = { cancel() {}, on() { return this; } };
/** Stands in for grpc-js's `makeUnaryRequest`: serializes, then answers on the next microtask. */
function fakeUnary(_path: string, serialize: (v: unknown) => Buffer, deserialize: (b: Buffer) => unknown, request: unknown, ...rest: unknown[]) {
  const callback = rest.find((a) => typeof a === "function") as (e: unknown, v: unknown) => void;
  serialize(request);
  queueMicrotask(() => callback(null, deserialize(replyBytes)));
  return FAKE_CALL;
}

async function loop(one: () => Promise<unknown>, inFlight = 100): Promise<void> {
  let left = calls;
  await Promise.all(Array.from({ length: inFlight }, async () => { while (left-- > 0) await one(); }));
}

async function main(): Promise<void> {
  const handler = serverHandler();
  const client = createClient(GreeterDefinition, "127.0.0.1:1");
  (client.$grpc as unknown as { makeUnaryRequest: unknown }).makeUnaryRequest = fakeUnary;
  const sides: [string, () => Promise<unknown>][] = [
    ["server", () => new Promise((resolve, reject) => handler(fakeServerCall(), (err, value) => (err ? reject(err) : resolve(value))))],
    ["client", () => client.sayHello({ name })],
  ];
  for (const [side, one] of sides) {
    await loop(one); // warm-up: JIT
    await loop(one);
    if (underCallgrind) {
      await callgrind("-i", "on");
      await callgrind("-z");
      await loop(one);
      await callgrind("-d", side);
      await callgrind("-i", "off");
      continue;
    }
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const before = process.cpuUsage();
      await loop(one);
      const used = process.cpuUsage(before);
      runs.push((used.user + used.system) / calls);
    }
    runs.sort((a, b) => a - b);
    console.log(`${mode} ${side}: ${runs[2]!.toFixed(2)} µs CPU per call (median of 5; fastest ${runs[0]!.toFixed(2)})`);
  }
  client.$close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
