import * as grpc from "@grpc/grpc-js";
import { withoutIpServerName } from "./ip-safe-credentials";
import type { MethodDefinition, ServiceDefinition } from "./definition";
import type { CallOptions } from "./context";
import { chain, type CallNext, type CallRequest, type Interceptor } from "./interceptor";
import { MessageReader } from "./message-reader";
import { RpcError, Status, fromServiceError } from "./errors";
import { currentCallContext } from "./call-scope";
import { pump } from "./streams";
import { DISCOVERY_OPTION } from "./balancing/instances";
import { builtinInterceptors, type ObservabilityOptions } from "./observability";
import { buildServiceConfig, hashHeaderOf, type BalancerOption, type RetryOption } from "./balancing/service-config";
import { setup as setupConsistentHash } from "./balancing/lb-consistent-hash";
import { MAX_METADATA_BYTES, metadataBytes } from "./metadata-size";

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Load balancing across the target's endpoints (default `round_robin`). */
  balancer?: BalancerOption;
  /** Retry policy for idempotent methods (or those listed); off by default. `true` uses the defaults. */
  retry?: RetryOption | boolean;
  /** Interceptors, outermost first. */
  interceptors?: Interceptor[];
  /** Spans for every call (see `protomesh/tracing`). Unset: on once `setupTracing` ran; `false`: off. */
  tracing?: ObservabilityOptions["tracing"];
  /** Prometheus metrics per method (`grpc_client_*`); expose them with `serveMetrics`. */
  metrics?: ObservabilityOptions["metrics"];
  /** Transport credentials; insecure by default. */
  credentials?: grpc.ChannelCredentials;
  /** Deadline applied to calls that set none (milliseconds). */
  defaultDeadlineMs?: number;
  /** Largest response accepted, in bytes (default 4 MiB). */
  maxReceiveMessageBytes?: number;
  /** Largest request sent, in bytes (default unlimited). */
  maxSendMessageBytes?: number;
  /** Passed to the resolver of registry targets (`etcd:///…`) as its discovery source. */
  discovery?: unknown;
  /** Raw grpc-js channel options, merged last. */
  channelOptions?: grpc.ChannelOptions;
}

/** Members every client has besides its RPC methods; `$`-prefixed so they never clash with one. */
export interface ClientHandle {
  /** The underlying grpc-js client (its channel balances the calls). */
  readonly $grpc: grpc.Client;
  /** The target the client dials. */
  readonly $target: string;
  /** Closes the channel; calls in flight are cancelled. */
  $close(): void;
}


/**
 * Creates a typed client for `definition` at `target`: `host:port`, `dns:…`, `ipv4:…`, or a
 * registry target such as `etcd:///greeter` (importing `protomesh` registers the `etcd` scheme).
 *
 * @example
 *   const greeter = createClient(GreeterDefinition, "etcd:///greeter", { balancer: "round_robin" });
 *   const reply = await greeter.sayHello({ name: "Ada" }, { deadlineMs: 500 });
 */
export function createClient<C>(definition: ServiceDefinition<unknown, C>, target: string, options: ClientOptions = {}): C & ClientHandle {
  if (typeof target !== "string" || target.trim() === "") throw new TypeError("createClient: target must be a non-empty string such as 127.0.0.1:50051 or etcd:///greeter");
  if (options.defaultDeadlineMs !== undefined) checkDeadlineMs(options.defaultDeadlineMs, "defaultDeadlineMs");
  const balancer = options.balancer ?? "round_robin";
  if (typeof balancer === "object" && balancer !== null && "consistentHash" in balancer) setupConsistentHash();
  const retry = options.retry === true ? {} : options.retry === false ? undefined : options.retry;
  const serviceConfig = buildServiceConfig(definition, { balancer, retry });
  const channelOptions: grpc.ChannelOptions = {
    "grpc.service_config": JSON.stringify(serviceConfig),
    // A registry is the source of truth for addresses; do not let a stale service config from DNS override ours.
    "grpc.service_config_disable_resolution": 1,
    // Always on, even without a retry policy: grpc-js then still retries transparently the calls that never
    // reached a handler (a stream refused by a draining server, one that could not be opened); off, those fail.
    "grpc.enable_retries": 1,
  };
  if (options.maxReceiveMessageBytes !== undefined) channelOptions["grpc.max_receive_message_length"] = options.maxReceiveMessageBytes;
  if (options.maxSendMessageBytes !== undefined) channelOptions["grpc.max_send_message_length"] = options.maxSendMessageBytes;
  if (options.discovery !== undefined) channelOptions[DISCOVERY_OPTION] = options.discovery;
  Object.assign(channelOptions, options.channelOptions);
  const raw = new grpc.Client(target, options.credentials ? withoutIpServerName(options.credentials) : grpc.credentials.createInsecure(), channelOptions);
  const caller = new Caller(raw, target, options, hashHeaderOf(balancer));

  const client: Record<string, unknown> = {
    $grpc: raw,
    $target: target,
    $close: () => raw.close(),
  };
  for (const method of Object.values(definition.methods)) client[method.localName] = caller.method(method);
  return client as C & ClientHandle;
}

/** Closes a client made by {@link createClient}. */
export function closeClient(client: ClientHandle): void {
  client.$close();
}

interface Prepared {
  metadata: grpc.Metadata;
  deadline: number | undefined;
  signals: AbortSignal[];
}

class Caller {
  private readonly interceptors: readonly Interceptor[];
  private readonly defaultDeadlineMs: number | undefined;

  constructor(
    private readonly raw: grpc.Client,
    private readonly target: string,
    options: ClientOptions,
    private readonly hashHeader: string,
  ) {
    this.interceptors = [...builtinInterceptors(options), ...(options.interceptors ?? [])];
    this.defaultDeadlineMs = options.defaultDeadlineMs;
  }

  method(method: MethodDefinition): (request: unknown, options?: CallOptions) => unknown {
    const transport = boundedMetadata(this.transport(method));
    const run = this.interceptors.length === 0 ? transport : chain(this.interceptors, transport);
    const start = (request: unknown, opts: CallOptions | undefined): Promise<unknown> => {
      let prepared: Prepared;
      try {
        prepared = this.prepare(opts);
      } catch (err) {
        return Promise.reject(err); // a bad option fails the call's promise, never the caller's stack
      }
      const signal = linkSignals(prepared.signals);
      const req: CallRequest = { side: "client", method, metadata: prepared.metadata, deadline: prepared.deadline, signal, peer: this.target, request, context: opts?.detached ? undefined : opts?.parent };
      return run(req).then((r) => r.response);
    };
    if (!method.responseStream) return start;
    return (request, opts) => streamOf(() => start(request, opts));
  }

  /** The innermost `next`: performs the call with grpc-js. */
  private transport(method: MethodDefinition): CallNext {
    const { path } = method;
    const ser = method.requestSerialize as (v: unknown) => Buffer;
    const de = method.responseDeserialize;
    const raw = this.raw;
    switch (method.kind) {
      case "unary":
        return (req) =>
          new Promise((resolve, reject) => {
            if (req.signal.aborted) return reject(cancelled(req.signal));
            const call = raw.makeUnaryRequest(path, ser, de, req.request, req.metadata, callOptions(req), (err, value) => {
              req.signal.removeEventListener("abort", onAbort);
              if (err) reject(fromServiceError(err));
              else resolve({ response: value });
            });
            const onAbort = () => call.cancel();
            listen(req.signal, onAbort);
            observe(call, req);
          });
      case "client_streaming":
        return (req) =>
          new Promise((resolve, reject) => {
            if (req.signal.aborted) return reject(cancelled(req.signal));
            const call = raw.makeClientStreamRequest(path, ser, de, req.metadata, callOptions(req), (err, value) => {
              req.signal.removeEventListener("abort", onAbort);
              if (err) reject(sendError ?? fromServiceError(err));
              else resolve({ response: value });
            });
            let sendError: RpcError | undefined;
            const onAbort = () => call.cancel();
            listen(req.signal, onAbort);
            observe(call, req);
            pump(req.request as AsyncIterable<unknown>, call, req.signal).then(
              () => call.end(),
              (err) => {
                sendError = RpcError.from(err, Status.CANCELLED);
                call.cancel();
              },
            );
          });
      case "server_streaming":
      case "bidi_streaming":
        return async (req) => {
          if (req.signal.aborted) throw cancelled(req.signal);
          const call =
            method.kind === "server_streaming"
              ? raw.makeServerStreamRequest(path, ser, de, req.request, req.metadata, callOptions(req))
              : raw.makeBidiStreamRequest(path, ser, de, req.metadata, callOptions(req));
          observe(call, req);
          let sendError: RpcError | undefined;
          if (method.kind === "bidi_streaming") {
            const duplex = call as grpc.ClientDuplexStream<unknown, unknown>;
            pump(req.request as AsyncIterable<unknown>, duplex, req.signal).then(
              () => duplex.end(),
              (err) => {
                sendError = RpcError.from(err, Status.CANCELLED);
                duplex.cancel();
              },
            );
          }
          return { response: readStream(call, req.signal, () => sendError) };
        };
    }
  }

  private prepare(opts: CallOptions | undefined): Prepared {
    const parent = opts?.detached ? undefined : (opts?.parent ?? currentCallContext());
    let deadline: number | undefined;
    if (opts?.deadline !== undefined) {
      deadline = opts.deadline instanceof Date ? opts.deadline.getTime() : opts.deadline;
      if (typeof deadline !== "number" || Number.isNaN(deadline)) throw new RpcError(Status.INVALID_ARGUMENT, "call option `deadline` must be a Date or epoch milliseconds");
    }
    if (opts?.deadlineMs !== undefined) deadline = earlier(deadline, Date.now() + checkDeadlineMs(opts.deadlineMs, "deadlineMs"));
    if (deadline === undefined && this.defaultDeadlineMs !== undefined) deadline = Date.now() + this.defaultDeadlineMs;
    if (parent?.deadline !== undefined) deadline = earlier(deadline, parent.deadline);
    if (deadline !== undefined && !(deadline - Date.now() <= FARTHEST_DEADLINE_MS)) deadline = undefined;

    const metadata = toMetadata(opts?.metadata);
    if (opts?.hashKey !== undefined) metadata.set(this.hashHeader, String(opts.hashKey));
    const signals: AbortSignal[] = [];
    if (opts?.signal) signals.push(opts.signal);
    if (parent) signals.push(parent.signal);
    const prepared: Prepared = { metadata, deadline, signals };
    if (opts?.onHeader || opts?.onTrailer) observers.set(metadata, { onHeader: opts.onHeader, onTrailer: opts.onTrailer });
    return prepared;
  }
}

/**
 * The farthest deadline sent, 2^31-1 ms (about 24.8 days); a farther one, like an infinite one,
 * counts as none. grpc-js servers read `grpc-timeout` into a 32-bit integer, so a longer timeout
 * wraps around and usually expires the call at once; past 8 digits of hours the grpc-js client
 * throws from inside a promise and the call never ends.
 */
const FARTHEST_DEADLINE_MS = 2 ** 31 - 1;

/** Fails a call whose request metadata no server would accept, before it is sent. */
function boundedMetadata(next: CallNext): CallNext {
  return (req) => {
    const size = metadataBytes(req.metadata);
    if (size <= MAX_METADATA_BYTES) return next(req);
    return Promise.reject(new RpcError(Status.RESOURCE_EXHAUSTED, `request metadata is ${size} bytes, over the ${MAX_METADATA_BYTES}-byte limit`));
  };
}

/** Header/trailer callbacks of a call, keyed by its metadata object (which travels through interceptors). */
const observers = new WeakMap<grpc.Metadata, Pick<CallOptions, "onHeader" | "onTrailer">>();

function observe(call: grpc.ClientUnaryCall | grpc.ClientReadableStream<unknown> | grpc.ClientWritableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, req: CallRequest): void {
  const o = observers.get(req.metadata);
  if (!o) return;
  if (o.onHeader) call.on("metadata", (md: grpc.Metadata) => o.onHeader!(md));
  if (o.onTrailer) call.on("status", (s: grpc.StatusObject) => o.onTrailer!(s.metadata));
}

function callOptions(req: CallRequest): grpc.CallOptions {
  return req.deadline === undefined ? {} : { deadline: req.deadline };
}

function earlier(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

function checkDeadlineMs(value: number, name: string): number {
  if (typeof value !== "number" || Number.isNaN(value)) throw new RpcError(Status.INVALID_ARGUMENT, `call option \`${name}\` must be a number of milliseconds, got ${String(value)}`);
  return value;
}

function toMetadata(input: CallOptions["metadata"]): grpc.Metadata {
  if (input instanceof grpc.Metadata) return input.clone();
  const md = new grpc.Metadata();
  if (!input) return md;
  for (const [key, value] of Object.entries(input)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (key.endsWith("-bin")) md.add(key, Buffer.from(String(v)));
      else md.add(key, String(v));
    }
  }
  return md;
}

function linkSignals(signals: AbortSignal[]): AbortSignal {
  if (signals.length === 1) return signals[0]!;
  if (signals.length === 0) return NEVER;
  return AbortSignal.any(signals);
}

const NEVER = new AbortController().signal;

/** Adds an abort listener, skipping the shared never-firing signal (thousands of calls would pile up on it). */
function listen(signal: AbortSignal, fn: () => void): void {
  if (signal !== NEVER) signal.addEventListener("abort", fn, { once: true });
}

function cancelled(signal: AbortSignal): RpcError {
  return signal.reason instanceof RpcError ? new RpcError(Status.CANCELLED, signal.reason.rawMessage) : new RpcError(Status.CANCELLED, "call cancelled");
}

/** Reads a grpc-js response stream as an async iterable; breaking out of the loop cancels the call. */
function readStream(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, signal: AbortSignal, sendError: () => RpcError | undefined): AsyncIterableIterator<unknown> {
  const onAbort = () => call.cancel();
  listen(signal, onAbort);
  return new MessageReader(call, {
    mapError: (err) => sendError() ?? (isServiceError(err) ? fromServiceError(err) : RpcError.from(err)),
    onFinish(completed) {
      signal.removeEventListener("abort", onAbort);
      if (!completed) call.cancel();
    },
  });
}

function isServiceError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as grpc.ServiceError).code === "number" && (e as grpc.ServiceError).metadata instanceof grpc.Metadata;
}

/** An async iterable that starts the call on first iteration. */
function streamOf(start: () => Promise<unknown>): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      let inner: AsyncIterator<unknown> | undefined;
      let opening: Promise<AsyncIterator<unknown>> | undefined;
      const open = () =>
        (opening ??= start().then((stream) => {
          inner = (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]();
          return inner;
        }));
      return {
        // Once open, straight to the stream's iterator: no extra promise per message.
        next: () => (inner ? inner.next() : open().then((it) => it.next())),
        return: async (value?: unknown) => {
          if (inner?.return) await inner.return(value);
          return { done: true, value: undefined };
        },
      };
    },
  };
}
