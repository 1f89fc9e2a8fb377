import * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition, MethodDefinition } from "./definition";
import type { CallContext } from "./context";
import { chain, type CallNext, type Interceptor } from "./interceptor";
import { RpcError, Status } from "./errors";
import { getLogger, type Logger } from "./logger";
import { RefusalLog } from "./refusal-log";
import { runInCallScope } from "./call-scope";
import { CallAbort, ServerCallContext, ServerCallRequest, type CancellableCall } from "./call-abort";
import { isAsyncIterable, pump } from "./streams";
import { isTracingEnabled } from "./tracing-interceptor";
import type { Registrar, RegistrationHandle } from "../registry/registry";
import { advertisedAddress, parseListenAddress } from "./address";
import { DEFAULT_LISTEN_ADDRESS, isLoopbackOnly, reflectionDecision } from "./exposure";
import { openListener, resolveBindHosts, type Listener } from "./listener";
import { builtinInterceptors, metricsEndpointOf, type ServerMetricsOption } from "./observability";
import { serveMetrics, type MetricsEndpoint } from "./metrics-endpoint";
import { attachHealth, type Health } from "./health";
import { attachReflection } from "./reflection";
import { clearMetadata, MAX_METADATA_BYTES, MAX_STATUS_MESSAGE_CHARS, metadataBytes } from "./metadata-size";

/** Options of {@link createServer}. Every field is optional. */
export interface ServerOptions {
  /** Logical service name under which the server registers (`etcd:///<name>`). Required with `registry`. */
  name?: string;
  /** Where to register once serving; without one the server only listens. */
  registry?: Registrar;
  /** What the registration says about this instance. */
  instance?: {
    id?: string;
    version?: string;
    zone?: string;
    weight?: number;
    metadata?: Record<string, string>;
    /** Address clients should dial; defaults to the bound address (a wildcard host becomes this machine's first IPv4). */
    advertiseAddress?: string;
  };
  /** Interceptors, outermost first. More can be added with `use`. */
  interceptors?: Interceptor[];
  /** Largest request accepted, in bytes (default 4 MiB); larger ones get RESOURCE_EXHAUSTED. */
  maxReceiveMessageBytes?: number;
  /** Largest response sent, in bytes (default unlimited). */
  maxSendMessageBytes?: number;
  /**
   * Transport credentials; plaintext by default. Plaintext beyond loopback logs a warning
   * unless chosen explicitly with `grpc.ServerCredentials.createInsecure()`.
   */
  credentials?: grpc.ServerCredentials;
  /**
   * How long a new connection may take to finish its TLS handshake, and then again to send the
   * HTTP/2 preface, before it is closed (default 5000 ms).
   */
  handshakeTimeoutMs?: number;
  /** Connections open at once, handshakes included; more are closed on accept and logged (default 10,000). */
  maxConnections?: number;
  /** Calls in flight per connection (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`); clients queue the rest (default 1,000). */
  maxConcurrentStreams?: number;
  /** How long `shutdown()` lets in-flight calls finish before force-closing (default 10 s). */
  shutdownGraceMs?: number;
  /**
   * After deregistering, keep serving this long so clients' watches see the removal before
   * connections close (default 100 ms when registered, 0 otherwise).
   */
  deregisterDelayMs?: number;
  logger?: Logger;
  /** Spans for every call (see `protomesh/tracing`). Unset: on once `setupTracing` ran; `false`: off. */
  tracing?: boolean;
  /** Prometheus metrics per method; `{ port }` also serves `/metrics` on that port while the server runs. */
  metrics?: ServerMetricsOption;
  /**
   * Serve gRPC reflection (`grpc.reflection.v1` and `v1alpha`) from the added services' embedded
   * descriptors. Default: on when the server listens on loopback only or `PROTOMESH_ENV` is
   * `dev`/`development`/`local`/`test`; off otherwise, since it describes the whole API to anyone
   * who can connect.
   */
  reflection?: boolean;
  /** Serve `grpc.health.v1.Health`, which follows the lifecycle (default true). */
  health?: boolean;
  /**
   * Run handlers in the call scope (default true), so client calls made inside a handler inherit
   * its remaining deadline and cancellation without being told. The scope is an
   * `AsyncLocalStorage`; on Node 20 that makes every promise in the process dearer (about 0.3 µs),
   * which shows in streaming throughput. `false` drops the scope: pass `{ parent: ctx }` to the
   * calls a handler makes instead.
   */
  callScope?: boolean;
  /** Raw grpc-js server options, merged last. */
  grpcOptions?: grpc.ServerOptions;
}

/** Server lifecycle: `serving` after listen, `draining` when shutdown starts, `closed` at the end. */
export type ServerEvent = "serving" | "draining" | "closed";

/** A protomesh server. Create it with {@link createServer}. */
export interface Server {
  /** Serves a service; `handlers` implements the definition's generated handler interface. */
  add<H>(definition: ServiceDefinition<H, unknown>, handlers: H): this;
  /** Appends interceptors (they run after the ones already added). */
  use(...interceptors: Interceptor[]): this;
  /**
   * Binds (default `127.0.0.1:0`: this machine only), starts serving, then registers. Resolves
   * with the bound port; if registration fails, closes the server and rejects.
   */
  listen(address?: string): Promise<number>;
  /** Deregisters, stops accepting calls, drains in-flight ones within the grace period, then force-closes. */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /** Subscribes to a lifecycle event. */
  on(event: ServerEvent, listener: () => void | Promise<void>): this;
  readonly state: "idle" | "serving" | "draining" | "closed";
  /** Bound port once listening. */
  readonly port: number | undefined;
  /** Address clients should dial once listening (`127.0.0.1:50051`). */
  readonly address: string | undefined;
  /** Port of the metrics endpoint, when the `metrics` option asked for one. */
  readonly metricsPort: number | undefined;
  /** The registration, once registered. */
  readonly registration: RegistrationHandle | undefined;
  readonly services: readonly ServiceDefinition[];
  readonly name: string | undefined;
  readonly logger: Logger;
  /** The underlying grpc-js server, for extensions that add raw grpc-js services. */
  readonly grpc: grpc.Server;
  /** Health status per service; `server.health.set(name, "NOT_SERVING")` marks one down. */
  readonly health: Health;
}

/**
 * Creates a server.
 *
 * @example
 *   const server = createServer({ name: "greeter", registry });
 *   server.add(GreeterDefinition, { async sayHello(req) { return { message: `hi ${req.name}` }; } });
 *   const port = await server.listen("127.0.0.1:0");
 */
export function createServer(options: ServerOptions = {}): Server {
  return new ProtomeshServer(options);
}


class ProtomeshServer implements Server {
  readonly grpc: grpc.Server;
  readonly health: Health;
  readonly logger: Logger;
  readonly name: string | undefined;
  state: Server["state"] = "idle";
  port: number | undefined;
  address: string | undefined;
  registration: RegistrationHandle | undefined;
  private metricsEndpoint: MetricsEndpoint | undefined;
  private listener: Listener | undefined;
  private readonly defs: ServiceDefinition[] = [];
  private readonly interceptors: Interceptor[];
  /** Bumped by `use()`, so each method rebuilds its cached chain. */
  private interceptorsVersion = 0;
  private onlyBuiltinTracing: boolean;
  private readonly inFlight = new InFlightCalls();
  private readonly listeners = new Map<ServerEvent, Array<() => void | Promise<void>>>();
  private shutdownPromise: Promise<void> | undefined;
  private readonly handshakeTimeoutMs: number;
  /** A `listen()` is in progress (binding and registering take a while). */
  private listening = false;
  /** Reflection is added once, even when a failed bind is retried. */
  private reflectionAttached = false;
  private readonly maxConnections: number;

  /** Requests whose bytes did not decode, logged with the reason (grpc-js tells the caller only "Error deserializing request"). */
  private decodeFailures: RefusalLog | undefined;

  constructor(private readonly options: ServerOptions) {
    if (options.registry && !options.name) throw new TypeError("createServer: `name` is required when a `registry` is given");
    this.name = options.name;
    this.logger = (options.logger ?? getLogger()).child({ component: "server", ...(options.name ? { service: options.name } : {}) });
    const builtin = builtinInterceptors(options);
    this.interceptors = [...builtin, ...(options.interceptors ?? [])];
    this.onlyBuiltinTracing = builtin.length === 1 && !options.metrics && this.interceptors.length === 1;
    const grpcOptions: grpc.ServerOptions = { ...options.grpcOptions };
    if (options.maxReceiveMessageBytes !== undefined) grpcOptions["grpc.max_receive_message_length"] = positiveInt(options.maxReceiveMessageBytes, "maxReceiveMessageBytes");
    if (options.maxSendMessageBytes !== undefined) grpcOptions["grpc.max_send_message_length"] = positiveInt(options.maxSendMessageBytes, "maxSendMessageBytes");
    if (!("grpc.max_concurrent_streams" in grpcOptions)) grpcOptions["grpc.max_concurrent_streams"] = positiveInt(options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS, "maxConcurrentStreams");
    this.handshakeTimeoutMs = positiveInt(options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, "handshakeTimeoutMs");
    this.maxConnections = positiveInt(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, "maxConnections");
    this.grpc = new grpc.Server(grpcOptions);
    // Before any user listener, so NOT_SERVING is reported first when shutdown starts.
    this.health = attachHealth(this, options.health !== false);
  }

  get metricsPort(): number | undefined {
    return this.metricsEndpoint?.port;
  }

  get services(): readonly ServiceDefinition[] {
    return this.defs;
  }

  on(event: ServerEvent, listener: () => void | Promise<void>): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  private async emit(event: ServerEvent): Promise<void> {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        await listener();
      } catch (err) {
        this.logger.error(`${event} listener failed`, { err });
      }
    }
  }

  use(...interceptors: Interceptor[]): this {
    this.interceptors.push(...interceptors);
    this.interceptorsVersion++;
    if (interceptors.length > 0) this.onlyBuiltinTracing = false;
    return this;
  }

  /**
   * True when no interceptor would act on a call: there is none, or the only one is the
   * built-in tracing interceptor and tracing is off.
   */
  private passThrough(): boolean {
    if (this.interceptors.length === 0) return true;
    if (!this.onlyBuiltinTracing) return false;
    return this.options.tracing === false || (this.options.tracing === undefined && !isTracingEnabled());
  }

  add<H>(definition: ServiceDefinition<H, unknown>, handlers: H): this {
    if (this.state !== "idle") throw new Error(`server.add(${definition.typeName}): add services before listen()`);
    if (this.defs.some((d) => d.typeName === definition.typeName)) throw new Error(`server.add: ${definition.typeName} is already added`);
    if (handlers === null || typeof handlers !== "object") throw new TypeError(`server.add(${definition.typeName}): handlers must be an object`);
    const impl: grpc.UntypedServiceImplementation = {};
    const grpcDef: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const table = handlers as Record<string, unknown>;
    for (const method of Object.values(definition.methods)) {
      const fn = table[method.localName];
      if (fn !== undefined && typeof fn !== "function") throw new TypeError(`server.add(${definition.typeName}): ${method.localName} must be a function`);
      const handler = fn === undefined ? unimplemented(method) : (fn as HandlerFn).bind(handlers);
      grpcDef[method.localName] = {
        path: method.path,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        requestSerialize: method.requestSerialize,
        requestDeserialize: this.decodeGuard(method),
        responseSerialize: method.responseSerialize,
        responseDeserialize: method.responseDeserialize,
        originalName: method.name,
      };
      impl[method.localName] = this.adapt(method, handler);
    }
    this.grpc.addService(grpcDef, impl);
    this.defs.push(definition as ServiceDefinition);
    return this;
  }

  async listen(address = DEFAULT_LISTEN_ADDRESS): Promise<number> {
    if (this.state !== "idle") throw new Error(`server.listen: server is ${this.state}`);
    if (this.listening) throw new Error("server.listen: already called; wait for it to settle");
    this.listening = true;
    try {
      return await this.bindAndRegister(address);
    } finally {
      this.listening = false;
    }
  }

  private async bindAndRegister(address: string): Promise<number> {
    const { host, port: wanted } = parseListenAddress(address);
    const credentials = this.options.credentials ?? grpc.ServerCredentials.createInsecure();
    const hosts = await resolveBindHosts(host).catch((err: Error) => {
      throw new Error(`server.listen(${address}): cannot resolve ${host}: ${err.message}`);
    });
    const loopbackOnly = isLoopbackOnly(hosts);
    this.exposeByDefault(address, loopbackOnly);
    const metricsOptions = metricsEndpointOf(this.options.metrics);
    if (metricsOptions) this.metricsEndpoint = await serveMetrics(metricsOptions);
    const listenerOptions = { grpc: this.grpc, hosts, port: wanted, credentials, handshakeTimeoutMs: this.handshakeTimeoutMs, maxConnections: this.maxConnections, logger: this.logger };
    this.listener = await openListener(listenerOptions).catch(async (err: Error) => {
      await this.metricsEndpoint?.close();
      throw new Error(`server.listen(${address}): ${err.message}`, { cause: err });
    });
    const port = this.listener.port;
    this.port = port;
    this.address = this.options.instance?.advertiseAddress ?? advertisedAddress(host, port);
    this.state = "serving";
    await this.emit("serving");
    if (this.options.registry) {
      const inst = this.options.instance ?? {};
      try {
        this.registration = await this.options.registry.register({
          service: this.options.name!,
          address: this.address,
          id: inst.id,
          version: inst.version,
          zone: inst.zone,
          weight: inst.weight,
          // Where this instance's /metrics is, so scrapers (a release's analysis, Prometheus' service discovery) find it from the registry.
          metadata: this.metricsEndpoint ? { ...inst.metadata, metrics_port: String(this.metricsEndpoint.port) } : inst.metadata,
        });
      } catch (err) {
        // Nobody could find an unregistered instance: stop serving rather than leave the port bound.
        // The caller gets the error itself; the log says why in one line (a refusal is no bug to trace).
        this.logger.error("registration failed; closing the server", { reason: err instanceof Error ? err.message : String(err) });
        this.shutdownPromise = this.closeAfterFailedRegistration();
        await this.shutdownPromise;
        throw err;
      }
    }
    this.logger.info("serving", { address: this.address, services: this.defs.map((d) => d.typeName) });
    return port;
  }

  /**
   * Reflection by where the server listens, and a warning for plaintext beyond loopback unless
   * plaintext was chosen explicitly (`credentials: grpc.ServerCredentials.createInsecure()`).
   */
  private exposeByDefault(address: string, loopbackOnly: boolean): void {
    const reflection = reflectionDecision(this.options.reflection, loopbackOnly);
    if (reflection.serve && !this.reflectionAttached) {
      attachReflection(this, { health: this.options.health !== false });
      this.reflectionAttached = true;
    }
    else if (this.options.reflection === undefined) this.logger.info("reflection off", { address, why: reflection.why });
    if (!loopbackOnly && this.options.credentials === undefined) {
      this.logger.warn("serving plaintext beyond loopback: anyone who can reach this address can call every method, unencrypted", {
        address,
        fix: "pass `credentials` (TLS), bind 127.0.0.1, or pass grpc.ServerCredentials.createInsecure() to choose plaintext explicitly",
      });
    }
  }

  private async closeAfterFailedRegistration(): Promise<void> {
    this.state = "draining";
    await this.emit("draining");
    await this.listener?.close();
    this.grpc.forceShutdown();
    await this.metricsEndpoint?.close();
    this.state = "closed";
    await this.emit("closed");
  }

  shutdown(options: { graceMs?: number } = {}): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(options.graceMs ?? this.options.shutdownGraceMs ?? 10_000);
    return this.shutdownPromise;
  }

  private async doShutdown(graceMs: number): Promise<void> {
    if (this.state === "idle") {
      this.state = "closed";
      await this.listener?.close();
      this.grpc.forceShutdown();
      await this.emit("closed");
      return;
    }
    this.state = "draining";
    await this.emit("draining");
    if (this.registration) {
      try {
        await this.registration.deregister();
      } catch (err) {
        this.logger.warn("deregistration failed; the lease will expire on its own", { reason: err instanceof Error ? err.message : String(err) });
      }
      const delay = this.options.deregisterDelayMs ?? 100;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
    // No new connections from here on; the ones grpc-js holds drain below.
    await this.listener?.close();
    await new Promise<void>((resolve) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        if (this.inFlight.size > 0) this.logger.warn("grace period over; cancelling in-flight calls", { inFlight: this.inFlight.size, graceMs });
        for (const call of this.inFlight.list()) call.abort(new RpcError(Status.UNAVAILABLE, "server shutting down"));
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      // tryShutdown's callback alone is not enough: on Node 24 it can fire while calls on
      // connections handed over by our listener still run, so also wait for our own count.
      const drained = () => {
        if (done) return;
        if (this.inFlight.size > 0) return void setTimeout(drained, 10);
        done = true;
        clearTimeout(timer);
        resolve();
      };
      this.grpc.tryShutdown(drained);
    });
    await this.metricsEndpoint?.close();
    this.state = "closed";
    await this.emit("closed");
    this.logger.info("closed");
  }

  /** Runs `fn` in the call scope of `ctx`, unless the `callScope` option turned it off. */
  private inScope<T>(ctx: CallContext, fn: () => T): T {
    return this.options.callScope === false ? fn() : runInCallScope(ctx, fn);
  }

  /** `method`'s request decoder, logging a failure (rate-limited) before grpc-js answers INTERNAL. */
  private decodeGuard(method: MethodDefinition): (bytes: Buffer) => unknown {
    const decode = method.requestDeserialize;
    return (bytes) => {
      try {
        return decode(bytes);
      } catch (err) {
        this.decodeFailures ??= new RefusalLog(this.logger, undefined, undefined, "requests");
        this.decodeFailures.note({ what: "could not decode a request", reason: `${method.path}: ${err instanceof Error ? err.message : String(err)}`, fields: { bytes: bytes.length } });
        throw err;
      }
    };
  }

  /** Turns a protomesh handler into a grpc-js one for the method's call kind. */
  private adapt(method: MethodDefinition, handler: HandlerFn): grpc.UntypedHandleCall {
    /** The handler in the call scope; a synchronous throw becomes a rejection. */
    const direct = (ctx: ServerCallContext, request: unknown): Promise<unknown> => {
      try {
        return Promise.resolve(this.inScope(ctx, () => handler(request, ctx)));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const innermost: CallNext = (req) => direct(req.context as ServerCallContext, req.request).then((response) => ({ response }));
    let run: CallNext | undefined;
    let runVersion = -1;
    const invoke = (ctx: ServerCallContext, request: unknown): Promise<unknown> => {
      // Nothing would intercept: skip the request object and the chain.
      if (this.passThrough()) return direct(ctx, request);
      if (runVersion !== this.interceptorsVersion) {
        run = chain(this.interceptors, innermost);
        runVersion = this.interceptorsVersion;
      }
      return run!(new ServerCallRequest(ctx, request)).then((r) => r.response);
    };

    if (!method.responseStream) {
      return (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ctx = this.begin(method, call);
        const request = method.requestStream ? requestStream(call as grpc.ServerReadableStream<unknown, unknown>, ctx.signal) : (call as grpc.ServerUnaryCall<unknown, unknown>).request;
        invoke(ctx, request).then(
          (response) => {
            this.end(ctx);
            if (isAsyncIterable(response)) {
              callback(this.toStatus(new RpcError(Status.INTERNAL, "handler returned a stream for a unary response"), ctx, method), null);
              return;
            }
            const tooLarge = this.dropOversizedMetadata(ctx, method);
            if (tooLarge) return callback(this.toStatus(tooLarge, ctx, method), null);
            sendHeaderIfAny(call, ctx);
            callback(null, response ?? {}, ctx.peekTrailer());
          },
          (err) => {
            this.end(ctx);
            this.dropOversizedMetadata(ctx, method);
            sendHeaderIfAny(call, ctx);
            callback(this.toStatus(err, ctx, method), null);
          },
        );
      };
    }

    return (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
      const ctx = this.begin(method, call);
      const request = method.requestStream ? requestStream(call as grpc.ServerDuplexStream<unknown, unknown>, ctx.signal) : (call as grpc.ServerWritableStream<unknown, unknown>).request;
      invoke(ctx, request)
        .then(async (response) => {
          if (!isAsyncIterable(response)) throw new RpcError(Status.INTERNAL, "handler must return an async iterable for a streaming response");
          const tooLarge = this.dropOversizedMetadata(ctx, method);
          if (tooLarge) throw tooLarge;
          sendHeaderIfAny(call, ctx);
          await this.inScope(ctx, () => pump(response, call, ctx.signal));
          if (ctx.signal.aborted) throw ctx.signal.reason;
        })
        .then(
          () => {
            this.end(ctx);
            const tooLarge = this.dropOversizedMetadata(ctx, method);
            if (tooLarge) return void call.emit("error", this.toStatus(tooLarge, ctx, method));
            call.end(ctx.peekTrailer());
          },
          (err) => {
            this.end(ctx);
            this.dropOversizedMetadata(ctx, method);
            sendHeaderIfAny(call, ctx);
            call.emit("error", this.toStatus(err, ctx, method));
          },
        );
    };
  }

  /** Builds the handler context and tracks the call until {@link end}. */
  private begin(method: MethodDefinition, call: ServerSurfaceCall): ServerCallContext {
    const rawDeadline = call.getDeadline();
    const deadlineMs = rawDeadline instanceof Date ? rawDeadline.getTime() : rawDeadline;
    const deadline = Number.isFinite(deadlineMs) ? deadlineMs : undefined;
    const abort = new CallAbort(call as unknown as CancellableCall, deadline, CALL_ABORT_REASONS);
    this.inFlight.add(abort);
    return new ServerCallContext(method, call.metadata, call.getPeer(), deadline, abort);
  }

  /** The handler is done with the call: stop watching it for cancellation and forget it. */
  private end(ctx: ServerCallContext): void {
    ctx.abort.finish();
    this.inFlight.delete(ctx.abort);
  }

  private toStatus(err: unknown, ctx: CallContext, method: MethodDefinition): grpc.ServerErrorResponse {
    const error = RpcError.from(err);
    if (!(err instanceof RpcError) && error.code === Status.INTERNAL) {
      this.logger.error("handler failed", { method: method.path, err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) });
    }
    let trailers = ctx.responseTrailer.clone();
    trailers.merge(error.toTrailers());
    const bytes = metadataBytes(trailers);
    if (bytes > MAX_METADATA_BYTES) {
      this.logger.error("error trailers over the metadata limit; sending the status without them", { method: method.path, bytes, limit: MAX_METADATA_BYTES });
      trailers = new grpc.Metadata();
    }
    const raw = error.rawMessage;
    const message = raw.length > MAX_STATUS_MESSAGE_CHARS ? `${raw.slice(0, MAX_STATUS_MESSAGE_CHARS)}… (truncated)` : raw;
    return { name: "RpcError", message, code: error.code, details: message, metadata: trailers };
  }

  /**
   * Response metadata over {@link MAX_METADATA_BYTES} would leave the caller's connection
   * waiting (see metadata-size.ts): drop it, log why, and return the error to answer with.
   */
  private dropOversizedMetadata(ctx: ServerCallContext, method: MethodDefinition): RpcError | undefined {
    const header = ctx.peekHeader();
    const trailer = ctx.peekTrailer();
    if (!header && !trailer) return undefined;
    const headerBytes = header ? metadataBytes(header) : 0;
    const trailerBytes = trailer ? metadataBytes(trailer) : 0;
    if (headerBytes <= MAX_METADATA_BYTES && trailerBytes <= MAX_METADATA_BYTES) return undefined;
    this.logger.error("response metadata over the limit; failing the call", { method: method.path, headerBytes, trailerBytes, limit: MAX_METADATA_BYTES });
    clearMetadata(ctx.responseHeader);
    clearMetadata(ctx.responseTrailer);
    return new RpcError(Status.RESOURCE_EXHAUSTED, `response metadata over the ${MAX_METADATA_BYTES}-byte limit`);
  }
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
const DEFAULT_MAX_CONNECTIONS = 10_000;
const DEFAULT_MAX_CONCURRENT_STREAMS = 1000;

const CALL_ABORT_REASONS = {
  cancelled: () => new RpcError(Status.CANCELLED, "call cancelled by the client"),
  deadline: () => new RpcError(Status.DEADLINE_EXCEEDED, "deadline exceeded"),
};

/** Any grpc-js server call; they share the surface used here (metadata, peer, deadline, events). */
type ServerSurfaceCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

type HandlerFn = (request: unknown, ctx: CallContext) => unknown;

function unimplemented(method: MethodDefinition): HandlerFn {
  return () => {
    throw new RpcError(Status.UNIMPLEMENTED, `${method.path} is not implemented`);
  };
}

function sendHeaderIfAny(call: ServerSurfaceCall, ctx: ServerCallContext): void {
  const header = ctx.peekHeader();
  if (header && Object.keys(header.getMap()).length > 0) {
    try {
      call.sendMetadata(header);
    } catch {
      // Headers already sent (e.g. by an interceptor); nothing to do.
    }
  }
}

/** The incoming message stream of a client- or bidi-streaming call; ends early when the call is cancelled. */
async function* requestStream(call: grpc.ServerReadableStream<unknown, unknown>, signal: AbortSignal): AsyncGenerator<unknown> {
  const onAbort = () => call.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    // Keep the call open when the request side ends: for a bidi call the response side still has to finish.
    for await (const message of call.iterator({ destroyOnReturn: false })) yield message;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw RpcError.from(err);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * The calls being served, for shutdown to cancel: a list threaded through the calls
 * themselves, so tracking one allocates nothing.
 */
class InFlightCalls {
  private head: CallAbort | undefined = undefined;
  size = 0;

  add(call: CallAbort): void {
    call.previousInFlight = undefined;
    call.nextInFlight = this.head;
    if (this.head) this.head.previousInFlight = call;
    this.head = call;
    this.size++;
  }

  delete(call: CallAbort): void {
    const { previousInFlight: previous, nextInFlight: next } = call;
    if (previous) previous.nextInFlight = next;
    else if (this.head === call) this.head = next;
    else return; // not in the list (already removed)
    if (next) next.previousInFlight = previous;
    call.previousInFlight = call.nextInFlight = undefined;
    this.size--;
  }

  /** A copy, so the calls can be aborted (and removed) while it is walked. */
  list(): CallAbort[] {
    const calls: CallAbort[] = [];
    for (let call = this.head; call; call = call.nextInFlight) calls.push(call);
    return calls;
  }
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`createServer: ${name} must be a positive integer, got ${value}`);
  return value;
}
