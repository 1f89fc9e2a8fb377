import * as grpc from "@grpc/grpc-js";
import type { DescMessage, DescMethod, JsonValue, Registry } from "@bufbuild/protobuf";
import { protobuf } from "./protobuf-runtime";
import { RpcError, Status, fromServiceError } from "./errors";

/**
 * Calls any method known only by its descriptor, with JSON in and JSON out
 * (the canonical proto3 JSON mapping). Used by the explorer CLI and the docs
 * page's "try it" endpoint, which learn methods from reflection or `buf build`.
 */

export interface DynamicCallOptions {
  metadata?: grpc.Metadata;
  /** Absolute deadline (epoch milliseconds). */
  deadline?: number;
  /** Write fields that hold their default value too (default false, as proto3 JSON does). */
  emitDefaults?: boolean;
  /** Name fields as the .proto does (`served_by`) instead of their JSON names (`servedBy`; default false). */
  useProtoNames?: boolean;
  /** Registry for `google.protobuf.Any` and extensions in JSON. */
  registry?: Registry;
  signal?: AbortSignal;
  /** Hears the response headers. */
  onHeader?: (metadata: grpc.Metadata) => void;
  /** Hears the trailers at the end of a successful call. */
  onTrailer?: (metadata: grpc.Metadata) => void;
}

const paths = new WeakMap<DescMethod, string>();

/** `/package.Service/Method` (built once per method). */
export function methodPath(method: DescMethod): string {
  let path = paths.get(method);
  if (path === undefined) paths.set(method, (path = `/${method.parent.typeName}/${method.name}`));
  return path;
}

// Options objects for @bufbuild/protobuf, one per registry (and setting) instead of one per message.
const NO_REGISTRY = {};
const readOptions = new WeakMap<object, { registry?: Registry }>();
type WriteOptions = { registry?: Registry; alwaysEmitImplicit: boolean; useProtoFieldName: boolean };
// Indexed by (emitDefaults ? 1 : 0) + (useProtoNames ? 2 : 0).
const writeOptions = new WeakMap<object, readonly WriteOptions[]>();

function readOptionsOf(registry: Registry | undefined): { registry?: Registry } {
  const key = registry ?? NO_REGISTRY;
  let o = readOptions.get(key);
  if (!o) readOptions.set(key, (o = { registry }));
  return o;
}

function writeOptionsOf(registry: Registry | undefined, emitDefaults: boolean, useProtoNames: boolean): WriteOptions {
  const key = registry ?? NO_REGISTRY;
  let o = writeOptions.get(key);
  if (!o) {
    o = [0, 1, 2, 3].map((i) => ({ registry, alwaysEmitImplicit: (i & 1) !== 0, useProtoFieldName: (i & 2) !== 0 }));
    writeOptions.set(key, o);
  }
  return o[(emitDefaults ? 1 : 0) + (useProtoNames ? 2 : 0)];
}

/** JSON → wire bytes of `desc`; a bad value is an INVALID_ARGUMENT naming the message. */
export function encodeJson(desc: DescMessage, value: JsonValue, registry?: Registry): Buffer {
  try {
    const pb = protobuf();
    const bytes = pb.toBinary(desc, pb.fromJson(desc, value, readOptionsOf(registry)));
    // A view, not a copy: the bytes are fresh and owned by nobody else.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    throw new RpcError(Status.INVALID_ARGUMENT, `request is not a valid ${desc.typeName}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Wire bytes of `desc` → JSON. */
export function decodeJson(desc: DescMessage, bytes: Uint8Array, options: Pick<DynamicCallOptions, "emitDefaults" | "useProtoNames" | "registry"> = {}): JsonValue {
  const pb = protobuf();
  return pb.toJson(desc, pb.fromBinary(desc, bytes), writeOptionsOf(options.registry, options.emitDefaults === true, options.useProtoNames === true));
}

const identity = (b: Buffer) => b;

/** A unary call in flight: its answer, and a way to cancel it. */
export interface UnaryCall {
  /** The response as JSON; rejects with `RpcError` (or the decoding error when the answer cannot be converted). */
  readonly response: Promise<JsonValue>;
  /** Cancels the call (CANCELLED); does nothing once it has ended. */
  cancel(): void;
}

/**
 * Starts a unary call of `method` with one JSON `request`: grpc-js's callback API under a
 * single promise, with no stream or async-iterator machinery, for callers on a hot path
 * (the gateway). The same encoding, errors, header and trailer hooks and cancellation as
 * {@link dynamicCall}.
 */
export function startUnaryCall(client: grpc.Client, method: DescMethod, request: JsonValue, options: DynamicCallOptions = {}): UnaryCall {
  let bytes: Buffer;
  try {
    bytes = encodeJson(method.input, request, options.registry);
  } catch (err) {
    return { response: Promise.reject(err), cancel: () => undefined };
  }
  const signal = options.signal;
  if (signal?.aborted) return { response: Promise.reject(new RpcError(Status.CANCELLED, "call cancelled before it started")), cancel: () => undefined };
  let call: grpc.ClientUnaryCall | undefined;
  let onAbort: (() => void) | undefined;
  const response = new Promise<JsonValue>((resolve, reject) => {
    call = client.makeUnaryRequest(methodPath(method), identity, identity, bytes, options.metadata ?? new grpc.Metadata(), options.deadline === undefined ? {} : { deadline: options.deadline }, (err, value) => {
      if (onAbort) signal!.removeEventListener("abort", onAbort);
      if (err) return reject(fromServiceError(err));
      try {
        resolve(decodeJson(method.output, value!, options));
      } catch (e) {
        reject(e);
      }
    });
  });
  const active = call!;
  if (options.onHeader) active.on("metadata", options.onHeader);
  if (options.onTrailer) {
    const onTrailer = options.onTrailer;
    active.on("status", (s: grpc.StatusObject) => s.code === Status.OK && onTrailer(s.metadata));
  }
  if (signal) {
    onAbort = () => active.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
  }
  return new StartedCall(response, active);
}

/** A started unary call: a class rather than an object literal with a closure, made once per call. */
class StartedCall implements UnaryCall {
  constructor(
    readonly response: Promise<JsonValue>,
    private readonly call: grpc.ClientUnaryCall,
  ) {}

  cancel(): void {
    this.call.cancel();
  }
}

/**
 * Performs `method` on `client`. `requests` are JSON messages: unary and
 * server-streaming methods take exactly one (none means `{}`), streaming
 * requests are sent as they are produced. Yields each response as JSON;
 * failures are thrown as `RpcError`.
 */
export async function* dynamicCall(
  client: grpc.Client,
  method: DescMethod,
  requests: AsyncIterable<JsonValue> | Iterable<JsonValue>,
  options: DynamicCallOptions = {},
): AsyncGenerator<JsonValue> {
  const path = methodPath(method);
  const metadata = options.metadata ?? new grpc.Metadata();
  const callOptions: grpc.CallOptions = options.deadline === undefined ? {} : { deadline: options.deadline };
  const encode = (value: JsonValue) => encodeJson(method.input, value, options.registry);
  const decode = (bytes: Buffer) => decodeJson(method.output, bytes, options);
  const requestStream = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
  const responseStream = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";

  if (!requestStream && !responseStream) {
    const unary = startUnaryCall(client, method, await single(requests, method), options);
    let settled = false;
    try {
      const answer = await unary.response;
      settled = true;
      yield answer;
    } finally {
      // Left before the answer came (the consumer stopped): the call is not needed any more.
      if (!settled) unary.cancel();
    }
    return;
  }

  let call: grpc.ClientReadableStream<Buffer> | grpc.ClientWritableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>;
  let unaryResult: Promise<Buffer> | undefined;
  let sendError: unknown;
  if (!requestStream) {
    call = client.makeServerStreamRequest(path, identity, identity, encode(await single(requests, method)), metadata, callOptions);
  } else if (responseStream) {
    call = client.makeBidiStreamRequest(path, identity, identity, metadata, callOptions);
  } else {
    unaryResult = new Promise((resolve, reject) => {
      call = client.makeClientStreamRequest(path, identity, identity, metadata, callOptions, (err, value) => (err ? reject(sendError ?? fromServiceError(err)) : resolve(value!)));
    });
  }
  const active = call!;
  if (options.onHeader) active.on("metadata", options.onHeader);
  if (options.onTrailer) active.on("status", (s: grpc.StatusObject) => s.code === Status.OK && options.onTrailer!(s.metadata));
  const onAbort = () => active.cancel();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  if (requestStream) {
    const writable = active as grpc.ClientWritableStream<Buffer>;
    send(requests, writable, encode).then(
      () => writable.end(),
      (err: unknown) => {
        sendError = RpcError.from(err, Status.INVALID_ARGUMENT);
        active.cancel();
      },
    );
  }

  let finished = false;
  try {
    if (unaryResult) {
      yield decode(await unaryResult);
    } else {
      try {
        for await (const bytes of active as grpc.ClientReadableStream<Buffer>) yield decode(bytes as Buffer);
      } catch (err) {
        if (sendError) throw sendError;
        throw isServiceError(err) ? fromServiceError(err) : RpcError.from(err);
      }
      if (sendError) throw sendError;
    }
    finished = true;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (!finished) active.cancel();
  }
}

/** The one request of a unary or server-streaming call. */
async function single(requests: AsyncIterable<JsonValue> | Iterable<JsonValue>, method: DescMethod): Promise<JsonValue> {
  const taken: JsonValue[] = [];
  for await (const value of requests) {
    taken.push(value);
    if (taken.length > 1) throw new RpcError(Status.INVALID_ARGUMENT, `${method.parent.typeName}/${method.name} takes one request message, got more`);
  }
  return taken[0] ?? {};
}

/** Writes every request, waiting for the stream to drain when its buffer is full. */
async function send(requests: AsyncIterable<JsonValue> | Iterable<JsonValue>, stream: grpc.ClientWritableStream<Buffer>, encode: (v: JsonValue) => Buffer): Promise<void> {
  for await (const value of requests) {
    if (stream.destroyed || stream.writableEnded) return;
    if (!stream.write(encode(value))) {
      await new Promise<void>((resolve) => {
        stream.once("drain", resolve);
        stream.once("close", resolve);
      });
    }
  }
}

function isServiceError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as grpc.ServiceError).code === "number" && (e as grpc.ServiceError).metadata instanceof grpc.Metadata;
}
