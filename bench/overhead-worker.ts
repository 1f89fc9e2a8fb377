/**
 * Worker: what protomesh itself adds per call, with the network taken out. Each layer is
 * timed against the smallest raw grpc-js equivalent fed the same fake call:
 * - server: the grpc-js handler protomesh registers (captured from `addService`) against a
 *   raw callback handler, called with a fake `ServerUnaryCall`;
 * - client: `sayHello` of a protomesh client whose grpc-js client is given a fake
 *   `makeUnaryRequest`, against a bare promise around the same fake;
 * - streams: protomesh's `streamHellos` over a fake grpc-js stream against reading the
 *   same stream with `'data'` events and with `for await`;
 * - two suspects on their own: making an AbortSignal, and awaiting once AsyncLocalStorage
 *   has switched on Node's promise hooks.
 * Results are the fastest of several runs (the least disturbed by other load), in µs.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { createClient, createServer } from "protomesh";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { GreeterService, HelloReply } from "../gen/examples/greeter/v1/greeter";
import { payload, protomeshEchoHandlers, rawEchoHandlers } from "./echo-services";
import { serveCommands } from "./ipc";
import { traceIntoTheVoid } from "./trace-sink";

export interface OverheadResult {
  serverRaw: number;
  serverProtomesh: number;
  serializeFromPartial: number;
  serializeEncodeOnly: number;
  clientRaw: number;
  clientProtomesh: number;
  streamData: number;
  streamForAwait: number;
  streamProtomesh: number;
  abortSignal: number;
  awaitBeforeAls: number;
  awaitAfterAls: number;
  /** With the OpenTelemetry SDK set up (every call sampled, spans dropped). */
  serverTraced: number;
  clientTraced: number;
}

interface Plan {
  calls: number;
  runs: number;
}

/** Fastest of `runs` runs of `calls` calls of `one`, 100 in flight; µs per call. */
async function perCall(plan: Plan, one: () => Promise<unknown>, inFlight = 100): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < plan.runs + 1; r++) {
    let left = plan.calls;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (left-- > 0) await one();
      }),
    );
    const us = ((performance.now() - t0) * 1000) / plan.calls;
    if (r > 0 && us < best) best = us; // the first run warms up
  }
  return best;
}

/** Fastest of `runs` runs of a synchronous loop; µs per iteration. */
function perIteration(plan: Plan, fn: (i: number) => unknown): number {
  const keep: unknown[] = new Array(256);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < plan.runs + 1; r++) {
    const t0 = performance.now();
    for (let i = 0; i < plan.calls; i++) keep[i & 255] = fn(i);
    const us = ((performance.now() - t0) * 1000) / plan.calls;
    if (r > 0 && us < best) best = us;
  }
  return best;
}

function fakeServerCall(request: unknown): grpc.ServerUnaryCall<unknown, unknown> {
  const call = Object.assign(new EventEmitter(), {
    request,
    metadata: new grpc.Metadata(),
    cancelled: false,
    getDeadline: () => Number.POSITIVE_INFINITY,
    getPeer: () => "ipv4:127.0.0.1:40000",
    sendMetadata: () => {},
  });
  return call as unknown as grpc.ServerUnaryCall<unknown, unknown>;
}

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

function serverCall(handler: UnaryHandler, name: string): () => Promise<unknown> {
  return () =>
    new Promise((resolve, reject) => {
      handler(fakeServerCall({ name }), (err, value) => (err ? reject(err) : resolve(value)));
    });
}

/** The grpc-js handler protomesh registers for `sayHello`, caught on its way to `addService`. */
function protomeshServerHandler(tracing?: boolean): UnaryHandler {
  const server = createServer({ tracing });
  let captured: UnaryHandler | undefined;
  const addService = server.grpc.addService.bind(server.grpc);
  server.grpc.addService = (service, implementation) => {
    if (typeof implementation.sayHello === "function") captured = implementation.sayHello as UnaryHandler;
    else addService(service, implementation);
  };
  server.add(GreeterDefinition, protomeshEchoHandlers() as GreeterHandlers);
  if (!captured) throw new Error("overhead: sayHello handler not captured");
  return captured;
}

const FAKE_CALL = { cancel() {}, on() { return this; } };

/** Stands in for grpc-js's `makeUnaryRequest`: serializes, then answers on the next microtask. */
function fakeUnary(reply: Buffer) {
  return (_path: string, serialize: (v: unknown) => Buffer, deserialize: (b: Buffer) => unknown, request: unknown, ...rest: unknown[]) => {
    const callback = rest.find((a) => typeof a === "function") as (e: unknown, v: unknown) => void;
    serialize(request);
    queueMicrotask(() => callback(null, deserialize(reply)));
    return FAKE_CALL;
  };
}

/** A grpc-js-like object-mode response stream of `count` messages, arriving in bursts of 16. */
function fakeStream(count: number, message: unknown): Readable {
  let sent = 0;
  const stream = new Readable({
    objectMode: true,
    read() {
      setImmediate(() => {
        for (let i = 0; i < 16 && sent < count; i++, sent++) this.push(message);
        if (sent === count) this.push(null);
      });
    },
  });
  return Object.assign(stream, { cancel: () => stream.destroy() });
}

async function measure(args: { quick: boolean }): Promise<OverheadResult> {
  const plan: Plan = args.quick ? { calls: 10_000, runs: 1 } : { calls: 200_000, runs: 6 };
  const streamPlan: Plan = args.quick ? { calls: 8, runs: 1 } : { calls: 200, runs: 6 };
  const name = payload(100);
  const replyBytes = Buffer.from(HelloReply.encode({ message: name, servedBy: "", at: undefined }).finish());

  // Before anything runs inside AsyncLocalStorage (the protomesh server below does).
  const awaitBeforeAls = await perCall(plan, async () => await Promise.resolve(1), 1);
  const abortSignal = perIteration(plan, () => new AbortController().signal);

  const method = GreeterService.sayHello;
  const unary = fakeUnary(replyBytes);
  const clientRaw = await perCall(plan, () => new Promise((resolve, reject) => unary(method.path, method.requestSerialize as (v: unknown) => Buffer, method.responseDeserialize as (b: Buffer) => unknown, { name }, new grpc.Metadata(), {}, (err: unknown, value: unknown) => (err ? reject(err) : resolve(value)))));
  const pmClient = createClient(GreeterDefinition, "127.0.0.1:1");
  (pmClient.$grpc as unknown as { makeUnaryRequest: unknown }).makeUnaryRequest = unary;
  const clientProtomesh = await perCall(plan, () => pmClient.sayHello({ name }));

  const perStream = 1000;
  const message = { message: payload(1024), servedBy: "", at: undefined };
  const readAll = async (iterable: AsyncIterable<unknown>) => {
    for await (const _ of iterable);
  };
  const perMessage = async (read: () => Promise<unknown>) => (await perCall(streamPlan, read, 4)) / perStream;
  const streamData = await perMessage(
    () =>
      new Promise((resolve, reject) => {
        const s = fakeStream(perStream, message);
        s.on("data", () => {});
        s.on("end", resolve);
        s.on("error", reject);
      }),
  );
  const streamForAwait = await perMessage(() => readAll(fakeStream(perStream, message)));
  (pmClient.$grpc as unknown as { makeServerStreamRequest: unknown }).makeServerStreamRequest = () => fakeStream(perStream, message);
  const streamProtomesh = await perMessage(() => readAll(pmClient.streamHellos({ name, count: perStream })));
  pmClient.$close();

  // Interleaved, so both see the same JIT and heap state.
  const ser = GreeterDefinition.methods.sayHello!.responseSerialize;
  let serializeFromPartial = Number.POSITIVE_INFINITY;
  let serializeEncodeOnly = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    serializeFromPartial = Math.min(serializeFromPartial, perIteration(plan, () => ser({ message: name })));
    serializeEncodeOnly = Math.min(serializeEncodeOnly, perIteration(plan, () => GreeterService.sayHello.responseSerialize({ message: name, servedBy: "", at: undefined })));
  }

  const serverRaw = await perCall(plan, serverCall(rawEchoHandlers().implementation.sayHello as UnaryHandler, name));
  const serverProtomesh = await perCall(plan, serverCall(protomeshServerHandler(), name));

  // protomesh has run handlers inside AsyncLocalStorage by now; make sure, then measure again.
  new AsyncLocalStorage<object>().run({}, () => undefined);
  const awaitAfterAls = await perCall(plan, async () => await Promise.resolve(1), 1);

  // Last: once the SDK is set up it stays for the process.
  traceIntoTheVoid("bench-overhead");
  const serverTraced = await perCall(plan, serverCall(protomeshServerHandler(true), name));
  const tracedClient = createClient(GreeterDefinition, "127.0.0.1:1", { tracing: true });
  (tracedClient.$grpc as unknown as { makeUnaryRequest: unknown }).makeUnaryRequest = unary;
  const clientTraced = await perCall(plan, () => tracedClient.sayHello({ name }));
  tracedClient.$close();

  return {
    serverTraced,
    clientTraced,
    serverRaw,
    serverProtomesh,
    serializeFromPartial,
    serializeEncodeOnly,
    clientRaw,
    clientProtomesh,
    streamData,
    streamForAwait,
    streamProtomesh,
    abortSignal,
    awaitBeforeAls,
    awaitAfterAls,
  };
}

serveCommands({ measure });
