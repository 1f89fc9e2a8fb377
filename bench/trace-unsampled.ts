/**
 * What the OpenTelemetry path costs per call when the sampler drops the span, piece by piece,
 * in one process with no network: the same SDK set-up as a traced protomesh process
 * (`setupTracing`, parent-based ratio sampler, batch processor, AsyncLocalStorage context
 * manager, W3C trace-context + baggage propagators), the same API calls the tracing
 * interceptor makes, in the same order.
 *
 *   node bin/run.js bench/trace-unsampled.ts [--iterations 200000] [--runs 5] [--ratio 0.1] [--evict KB]
 *
 * Prints CPU ns per operation (medians of `--runs`), for the client side (root span dropped by
 * the ratio sampler, `traceparent` written into grpc-js Metadata) and for the server side
 * (`traceparent` with the "not sampled" flag read from Metadata, child span dropped by the
 * parent-based sampler), and the whole interceptor on each side around a `next` that answers
 * at once. Compare the sums with the per-call CPU the unary bench's "10 % sampled" row adds.
 * `--evict KB` reads a buffer of that size between calls (one byte per 64-byte line), so that
 * each call finds the CPU's caches holding other data, as a real call does after the network
 * and grpc-js have run; then only the calls are timed, in wall time.
 */
import { parseArgs } from "node:util";
import { Metadata } from "@grpc/grpc-js";
import { context, propagation, trace, SpanKind, type Context } from "@opentelemetry/api";
import { tracingInterceptor, metadataGetter, metadataSetter } from "../runtime/tracing-interceptor";
import type { CallRequest, CallResponse } from "../runtime/interceptor";
import type { MethodDefinition } from "../runtime/definition";
import { traceIntoTheVoid } from "./trace-sink";
import { median } from "./stats";

const USAGE = "usage: node bin/run.js bench/trace-unsampled.ts [--iterations 200000] [--runs 5] [--ratio 0.1] [--evict KB]";

let evictBuffer: Uint8Array | undefined;
let evictSum = 0;
/** Reads one byte per cache line of the eviction buffer (nothing without `--evict`). */
function evict(): void {
  const b = evictBuffer;
  if (!b) return;
  let sum = 0;
  for (let i = 0; i < b.length; i += 64) sum += b[i]!;
  evictSum += sum;
}

function cpuNs(): bigint {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
}

/** CPU ns per iteration of `body`, median of `runs`; `body` gets the iteration number. */
async function measure(runs: number, iterations: number, body: (i: number) => unknown): Promise<number> {
  const results: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = cpuNs();
    for (let i = 0; i < iterations; i++) body(i);
    // Let promise jobs queued by the bodies run inside the measured CPU.
    await new Promise((resolve) => setImmediate(resolve));
    results.push(Number(cpuNs() - t0) / iterations);
  }
  return median(results);
}

/**
 * Like `measure`, for bodies that return a promise: awaited one at a time, as a call at c=1.
 * With `--evict`, the eviction reads run between calls and only the calls are timed (wall
 * time around each call, as CPU time cannot be read that finely).
 */
async function measureAsync(runs: number, iterations: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const results: number[] = [];
  for (let r = 0; r < runs; r++) {
    if (!evictBuffer) {
      const t0 = cpuNs();
      for (let i = 0; i < iterations; i++) await body(i);
      results.push(Number(cpuNs() - t0) / iterations);
      continue;
    }
    let spent = 0n;
    for (let i = 0; i < iterations; i++) {
      evict();
      const t = process.hrtime.bigint();
      await body(i);
      spent += process.hrtime.bigint() - t;
    }
    results.push(Number(spent) / iterations);
  }
  return median(results);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: "string" }, runs: { type: "string" }, ratio: { type: "string" }, evict: { type: "string" }, help: { type: "boolean" } } });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const iterations = Number(values.iterations ?? 200_000);
  const runs = Number(values.runs ?? 5);
  const ratio = Number(values.ratio ?? 0.1);
  const evictKb = Number(values.evict ?? 0);
  if (!(iterations > 0) || !(runs > 0) || !(ratio >= 0 && ratio <= 1) || !(evictKb >= 0)) throw new Error(`bad arguments\n${USAGE}`);
  if (evictKb > 0) evictBuffer = new Uint8Array(evictKb * 1024).fill(1);

  const exporter = traceIntoTheVoid("trace-unsampled", ratio);
  const tracer = trace.getTracer("protomesh");
  const attributes = { "rpc.system": "grpc", "rpc.service": "bench.Echo", "rpc.method": "Echo", "server.address": "127.0.0.1", "server.port": 50051 };
  const root = context.active();
  // A traceparent as a client with a 10 % sampler sends 9 times in 10: flag 00.
  const unsampledParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
  const incoming = new Metadata();
  incoming.set("traceparent", unsampledParent);

  const rows: [string, number][] = [];
  const row = async (name: string, p: Promise<number>): Promise<void> => {
    rows.push([name, await p]);
  };

  // Client side, as traceClient does it.
  await row("client: tracer.startSpan (root, ratio sampler)", measure(runs, iterations, () => tracer.startSpan("bench.Echo/Echo", { kind: SpanKind.CLIENT, attributes: { ...attributes } }, root)));
  const clientSpan = tracer.startSpan("bench.Echo/Echo", { kind: SpanKind.CLIENT }, root);
  await row("client: trace.setSpan", measure(runs, iterations, () => trace.setSpan(root, clientSpan)));
  const clientCtx = trace.setSpan(root, clientSpan);
  await row("client: new Metadata()", measure(runs, iterations, () => new Metadata()));
  await row("client: new Metadata() + propagation.inject", measure(runs, iterations, () => propagation.inject(clientCtx, new Metadata(), metadataSetter)));
  const answer = Promise.resolve(1);
  await row("client: context.with (sync body)", measure(runs, iterations, () => context.with(clientCtx, () => answer)));

  // Server side, as traceServer does it.
  await row("server: propagation.extract", measure(runs, iterations, () => propagation.extract(root, incoming, metadataGetter)));
  const parent: Context = propagation.extract(root, incoming, metadataGetter);
  await row("server: tracer.startSpan (remote unsampled parent)", measure(runs, iterations, () => tracer.startSpan("bench.Echo/Echo", { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": "bench.Echo", "rpc.method": "Echo" } }, parent)));

  // The whole interceptor around a `next` that answers at once, against no interceptor.
  const method = { path: "/bench.Echo/Echo", name: "Echo", requestStream: false, responseStream: false } as unknown as MethodDefinition;
  const response: CallResponse = { response: {} };
  const next = (_req: CallRequest): Promise<CallResponse> => Promise.resolve(response);
  const traced = tracingInterceptor({ enabled: true })(next);
  const signal = new AbortController().signal;
  const clientReq = (): CallRequest => ({ side: "client", method, metadata: new Metadata(), deadline: undefined, signal, peer: "127.0.0.1:50051", request: {} });
  const serverReq = (): CallRequest => {
    const metadata = new Metadata();
    metadata.set("traceparent", unsampledParent);
    return { side: "server", method, metadata, deadline: undefined, signal, peer: "ipv4:127.0.0.1:40000", request: {} };
  };
  const callIterations = Math.max(1, Math.floor(iterations / 4));
  await row("client call, no tracing interceptor", measureAsync(runs, callIterations, () => next(clientReq())));
  await row("client call, tracing interceptor", measureAsync(runs, callIterations, () => traced(clientReq())));
  await row("server call, no tracing interceptor", measureAsync(runs, callIterations, () => next(serverReq())));
  await row("server call, tracing interceptor", measureAsync(runs, callIterations, () => traced(serverReq())));

  const recorded = exporter.spans;
  process.stdout.write(`Node ${process.version}, sample ratio ${ratio}, ${iterations} iterations (calls: ${callIterations}), median of ${runs} runs${evictBuffer ? `, ${evictKb} KB read between calls (sum ${evictSum}); CPU ns per operation, the call rows in wall ns around each call` : "; CPU ns per operation"}\n\n| operation | ns |\n| --- | ---: |\n`);
  for (const [name, ns] of rows) process.stdout.write(`| ${name} | ${ns.toFixed(0)} |\n`);
  process.stdout.write(`\nspans exported so far: ${recorded}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(`trace-unsampled: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
