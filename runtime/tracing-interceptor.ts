/**
 * OpenTelemetry spans for protomesh calls, on both sides, through `@opentelemetry/api`
 * only: an SDK (see `protomesh/tracing`) decides where spans go. Span names and
 * attributes follow the OpenTelemetry semantic conventions for gRPC; the trace context
 * travels in metadata as W3C `traceparent` / `tracestate`.
 */
import {
  context,
  propagation,
  trace,
  ROOT_CONTEXT,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { Metadata } from "@grpc/grpc-js";
import type { CallNext, CallRequest, CallResponse, Interceptor } from "./interceptor";
import type { MethodDefinition } from "./definition";
import type { CallContext } from "./context";
import { RpcError, Status, codeName } from "./errors";
import { currentCallContext } from "./call-scope";
import { ServerCallContext } from "./call-abort";
import { observeStream, callOutcome } from "./observed-stream";
import { isAsyncIterable } from "./streams";

const TRACER_NAME = "protomesh";

let switchedOn = false;

/**
 * Set by `setupTracing` (protomesh/tracing), which knows its sampler: makes the
 * non-recording span of a call the sampler is sure to drop without asking the SDK, or
 * returns undefined to let the SDK start the span.
 */
export interface UnsampledShortcut {
  /** The provider whose sampler it answers for; used only for its tracers. */
  readonly provider: TracerProvider;
  dropped(parent: Context): Span | undefined;
}

let shortcut: UnsampledShortcut | undefined;

/** @internal `setupTracing` installs (and its stop function removes) the shortcut. */
export function setUnsampledShortcut(value: UnsampledShortcut | undefined): void {
  shortcut = value;
}

/**
 * Turns tracing on (or off) for every server and client whose `tracing` option is left
 * unset. `setupTracing` from `protomesh/tracing` calls it; call it yourself when you
 * register your own OpenTelemetry SDK.
 */
export function enableTracing(on = true): void {
  switchedOn = on;
}

/** Whether servers and clients without a `tracing` option create spans right now. */
export function isTracingEnabled(): boolean {
  return switchedOn;
}

/** Reads W3C trace headers from grpc-js metadata. */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get(md, key) {
    // Called for every header every propagator knows (traceparent, tracestate, baggage) on
    // every served call, mostly for absent ones: no array copies on the way.
    const values = md.get(key);
    if (values.length === 1) return typeof values[0] === "string" ? values[0] : undefined;
    if (values.length === 0) return undefined;
    const strings = values.filter((v): v is string => typeof v === "string");
    if (strings.length === 0) return undefined;
    return strings.length === 1 ? strings[0] : strings;
  },
};

/** Writes W3C trace headers into grpc-js metadata. */
export const metadataSetter: TextMapSetter<Metadata> = {
  set: (md, key, value) => md.set(key, value),
};

/** Options of {@link tracingInterceptor}. */
export interface TracingInterceptorOptions {
  /**
   * `true` traces every call, `false` never; unset follows {@link enableTracing}, so an
   * interceptor built before `setupTracing` starts tracing once it runs.
   */
  enabled?: boolean;
  /** Defaults to the globally registered provider. */
  tracerProvider?: TracerProvider;
}

/**
 * Creates a span for each call: CLIENT spans on clients, SERVER spans on servers. A
 * streaming call's span ends when its response stream ends. Servers and clients add one
 * by themselves (option `tracing`); use this only to place it in a custom chain.
 *
 * @example
 *   createClient(GreeterDefinition, "etcd:///greeter", { tracing: false, interceptors: [myAuth, tracingInterceptor()] });
 */
export function tracingInterceptor(options: TracingInterceptorOptions = {}): Interceptor {
  if (options.enabled === false) return (next) => next;
  const tracerOf = tracerSource(options.tracerProvider);
  return (next) => {
    const traced: CallNext = (req) => {
      const { tracer, fast } = tracerOf();
      return req.side === "client" ? traceClient(tracer, fast, req, next) : traceServer(tracer, fast, req, next);
    };
    if (options.enabled === true) return traced;
    return (req) => (switchedOn ? traced(req) : next(req));
  };
}

/**
 * The server span's context of calls served through a custom `CallContext` (protomesh's own
 * server keeps it on the call's context object, which is cheaper than a WeakMap entry).
 */
const serverContexts = new WeakMap<CallContext, Context>();

function rememberServerContext(callContext: CallContext | undefined, ctx: Context): void {
  if (callContext instanceof ServerCallContext) callContext.traceContext = ctx;
  else if (callContext) serverContexts.set(callContext, ctx);
}

function serverContextOf(callContext: CallContext | undefined): Context | undefined {
  if (callContext instanceof ServerCallContext) return callContext.traceContext as Context | undefined;
  return callContext && serverContexts.get(callContext);
}

/**
 * An OpenTelemetry `Context` whose methods live on the prototype. The API's own `BaseContext`
 * assigns three arrow functions to every new context in its constructor, and V8 allocates a
 * function literal assigned straight to a property in the old generation (until TurboFan has
 * optimized the constructor): each context then costs three old-generation closures that keep
 * it, its map and its span alive through every scavenge until the next mark-compact, and the
 * survivors can tip V8 into pretenuring more of the call. Contexts grown from this root (by
 * `propagation.extract` and `trace.setSpan` here, by anyone's `setValue` later) are plain young
 * objects.
 */
class CallTraceContext implements Context {
  constructor(private readonly values?: ReadonlyMap<symbol, unknown>) {}

  getValue(key: symbol): unknown {
    return this.values?.get(key);
  }

  setValue(key: symbol, value: unknown): Context {
    const values = new Map(this.values);
    values.set(key, value);
    return new CallTraceContext(values);
  }

  deleteValue(key: symbol): Context {
    if (!this.values?.has(key)) return this;
    const values = new Map(this.values);
    values.delete(key);
    return new CallTraceContext(values);
  }
}

/** The root the interceptor grows its contexts from instead of `ROOT_CONTEXT`. */
const ROOT = new CallTraceContext();

/*
 * A span the sampler dropped (most of them at a 10 % ratio) still has to carry its trace
 * id and the "not sampled" flag onwards: in the outgoing `traceparent` on clients, and as
 * the active context of the handler on servers, so that the handler's own calls follow the
 * same decision. It needs nothing else: no per-call attributes, no status, no end. So both
 * sides ask `isRecording()` right after `startSpan` and take the short way when it is false.
 */

function traceClient(tracer: Tracer, fast: UnsampledShortcut | undefined, req: CallRequest, next: CallNext): Promise<CallResponse> {
  const parent = parentContext(req);
  const names = methodNames(req.method);
  // server.address / server.port are given at start: samplers may look at them. A copy, as
  // the cached object must not be handed to a tracer that might keep or change it.
  const span = fast?.dropped(parent) ?? tracer.startSpan(names.spanName, { kind: SpanKind.CLIENT, attributes: { ...clientAttributes(names, req.peer) } }, parent);
  const ctx = trace.setSpan(parent, span);
  propagation.inject(ctx, req.metadata, metadataSetter);
  if (!span.isRecording()) return context.with(ctx, next, undefined, req);
  return settle(span, "client", req, ctx, next);
}

function traceServer(tracer: Tracer, fast: UnsampledShortcut | undefined, req: CallRequest, next: CallNext): Promise<CallResponse> {
  const parent = propagation.extract(ROOT, req.metadata, metadataGetter);
  const names = methodNames(req.method);
  const span = fast?.dropped(parent) ?? tracer.startSpan(names.spanName, { kind: SpanKind.SERVER, attributes: { ...names.attributes } }, parent);
  const ctx = trace.setSpan(parent, span);
  // Call scope is a second way to find the parent, for set-ups without a context manager.
  rememberServerContext(req.context, ctx);
  if (!span.isRecording()) {
    // A streaming response still needs the context around each step of the handler's body.
    if (!req.method.responseStream) return context.with(ctx, next, undefined, req);
  } else {
    span.setAttributes(peerAttributes(req.peer));
  }
  return settle(span, "server", req, ctx, next);
}

/** Runs the rest of the chain inside the span and ends the span when the call is over. */
function settle(span: Span, side: "client" | "server", req: CallRequest, ctx: Context, next: CallNext): Promise<CallResponse> {
  let pending: Promise<CallResponse>;
  try {
    pending = context.with(ctx, next, undefined, req);
  } catch (err) {
    finish(span, side, err);
    throw err;
  }
  return pending.then(
    (res) => {
      if (!req.method.responseStream) {
        finish(span, side, callOutcome(undefined, req));
        return res;
      }
      if (!isAsyncIterable(res.response)) {
        finish(span, side, new RpcError(Status.INTERNAL, "streaming call produced no stream"));
        return res;
      }
      const response = observeStream(res.response, {
        // A server-streaming handler's body runs while the stream is read: keep its span current there.
        run: side === "server" ? (step) => context.with(ctx, step) : undefined,
        onEnd: (err, early) => finish(span, side, callOutcome(err, req, early)),
      });
      return { response };
    },
    (err: unknown) => {
      finish(span, side, err);
      throw err;
    },
  );
}


/** Codes that mark a SERVER span as failed; the others are the caller's doing (semantic conventions). */
const SERVER_ERROR_CODES = new Set<number>([Status.UNKNOWN, Status.DEADLINE_EXCEEDED, Status.UNIMPLEMENTED, Status.INTERNAL, Status.UNAVAILABLE, Status.DATA_LOSS]);

function finish(span: Span, side: "client" | "server", err: unknown): void {
  if (err === undefined) {
    span.setAttribute("rpc.grpc.status_code", Status.OK);
  } else {
    const error = RpcError.from(err);
    span.setAttribute("rpc.grpc.status_code", error.code);
    span.setAttribute("error.type", codeName(error.code));
    if (side === "client" || SERVER_ERROR_CODES.has(error.code)) {
      // The original error (with its stack) stays inside the trace; callers only ever see the RpcError.
      span.recordException(err instanceof Error ? err : error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
    }
  }
  span.end();
}

function parentContext(req: CallRequest): Context {
  // An explicit `parent` call option names the served call this one belongs to.
  const explicit = serverContextOf(req.context);
  if (explicit) return explicit;
  const active = context.active();
  if (trace.getSpan(active)) return active;
  return serverContextOf(currentCallContext()) || (active === ROOT_CONTEXT ? ROOT : active);
}

/** The tracer calls use, and the unsampled shortcut when it answers for that tracer's provider. */
interface TracerChoice {
  readonly tracer: Tracer;
  readonly fast: UnsampledShortcut | undefined;
}

function tracerSource(provider: TracerProvider | undefined): () => TracerChoice {
  // Remade only when the global provider object or the installed shortcut changes (an SDK is
  // (re)registered, `setupTracing` starts or stops), not per call. A proxy's delegate is set at
  // most once, by the registration that comes before `setupTracing` installs its shortcut.
  let lastProvider: TracerProvider | undefined;
  let lastShortcut: UnsampledShortcut | undefined;
  let choice: TracerChoice | undefined;
  const tracer = provider?.getTracer(TRACER_NAME);
  return () => {
    const current = provider ?? trace.getTracerProvider();
    if (!choice || current !== lastProvider || shortcut !== lastShortcut) {
      lastProvider = current;
      lastShortcut = shortcut;
      const actual = current instanceof ProxyTracerProvider ? current.getDelegate() : current;
      choice = { tracer: tracer ?? current.getTracer(TRACER_NAME), fast: shortcut && actual === shortcut.provider ? shortcut : undefined };
    }
    return choice;
  };
}

interface MethodNames {
  readonly spanName: string;
  readonly attributes: Attributes;
  /** Start attributes of CLIENT spans per target: the method's plus `server.*`. */
  readonly byTarget: Map<string, Attributes>;
}

const methodCache = new WeakMap<MethodDefinition, MethodNames>();

function methodNames(method: MethodDefinition): MethodNames {
  let names = methodCache.get(method);
  if (!names) {
    const path = method.path.startsWith("/") ? method.path.slice(1) : method.path;
    const slash = path.lastIndexOf("/");
    const service = slash >= 0 ? path.slice(0, slash) : path;
    names = { spanName: path, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method.name }, byTarget: new Map() };
    methodCache.set(method, names);
  }
  return names;
}

/** Most processes call a handful of targets; past this many, per-target entries are no longer kept. */
const MAX_TARGETS_PER_METHOD = 64;

/** A CLIENT span's start attributes, made once per method and target; shared, so callers hand a tracer a copy. */
function clientAttributes(names: MethodNames, target: string): Attributes {
  let attributes = names.byTarget.get(target);
  if (!attributes) {
    attributes = { ...names.attributes, ...targetAttributes(target) };
    if (names.byTarget.size < MAX_TARGETS_PER_METHOD) names.byTarget.set(target, attributes);
  }
  return attributes;
}

/** `server.address` / `server.port` of a client target (`host:port`, `dns:///host:port`, `etcd:///service`). */
function targetAttributes(target: string): Attributes {
  let rest = target;
  const scheme = /^([a-z][a-z0-9+.-]*):(?!\d+$)/i.exec(target);
  if (scheme) {
    rest = target.slice(scheme[0].length);
    if (rest.startsWith("//")) rest = rest.slice(rest.indexOf("/", 2) + 1);
  }
  const first = rest.split(",")[0] ?? rest;
  const { host, port } = splitHostPort(first);
  const attributes: Attributes = { "server.address": host };
  if (port !== undefined) attributes["server.port"] = port;
  return attributes;
}

/** `network.peer.*` of a server-side peer (`ipv4:127.0.0.1:50123`, `ipv6:[::1]:50123`). */
function peerAttributes(peer: string): Attributes {
  const bare = peer.replace(/^(ipv4|ipv6|unix):/, "");
  const { host, port } = splitHostPort(bare);
  const attributes: Attributes = { "network.peer.address": host };
  if (port !== undefined) attributes["network.peer.port"] = port;
  return attributes;
}

function splitHostPort(value: string): { host: string; port: number | undefined } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracket) return { host: bracket[1]!, port: bracket[2] === undefined ? undefined : Number(bracket[2]) };
  const colon = value.lastIndexOf(":");
  if (colon > 0 && value.indexOf(":") === colon && /^\d+$/.test(value.slice(colon + 1))) {
    return { host: value.slice(0, colon), port: Number(value.slice(colon + 1)) };
  }
  return { host: value, port: undefined };
}
