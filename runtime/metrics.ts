/**
 * Prometheus metrics for protomesh calls, with prom-client. Names and labels follow the
 * long-standing gRPC Prometheus conventions (`grpc_server_handled_total{grpc_code=…}`),
 * plus in-flight gauges, so existing dashboards fit.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { ServerCallRequest } from "./call-abort";
import type { CallNext, CallRequest, CallResponse, Interceptor } from "./interceptor";
import type { MethodDefinition, MethodKind } from "./definition";
import { RpcError, Status, codeName } from "./errors";
import { observeStream, callOutcome } from "./observed-stream";
import { isAsyncIterable } from "./streams";

/** The registry protomesh records into unless told otherwise; serve it with `serveMetrics`. */
export const metricsRegistry = new Registry();

/** Latency buckets in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type CallLabel = "grpc_type" | "grpc_service" | "grpc_method";
type CodeLabel = CallLabel | "grpc_code";

/** The metric family of one side (server or client) in one registry. */
interface SideMetrics {
  readonly started: Counter<CallLabel>;
  readonly handled: Counter<CodeLabel>;
  readonly seconds: Histogram<CallLabel>;
  readonly inFlight: Gauge<CallLabel>;
  readonly received: Counter<CallLabel>;
  readonly sent: Counter<CallLabel>;
}

const families = new WeakMap<Registry, { server?: SideMetrics; client?: SideMetrics }>();

/** Returns the metrics of `side` in `registry`, creating them once. */
function sideMetrics(registry: Registry, side: "server" | "client"): SideMetrics {
  let entry = families.get(registry);
  if (!entry) families.set(registry, (entry = {}));
  const existing = entry[side];
  if (existing) return existing;
  const p = `grpc_${side}`;
  const who = side === "server" ? "served by this process" : "made by this process";
  const callLabels: CallLabel[] = ["grpc_type", "grpc_service", "grpc_method"];
  const registers = [registry];
  const created: SideMetrics = {
    started: new Counter({ name: `${p}_started_total`, help: `RPCs started, ${who}.`, labelNames: callLabels, registers }),
    handled: new Counter({ name: `${p}_handled_total`, help: `RPCs completed, by status code, ${who}.`, labelNames: [...callLabels, "grpc_code"], registers }),
    seconds: new Histogram({
      name: `${p}_handling_seconds`,
      help: `Time from start to the last message or status of RPCs ${who}, in seconds.`,
      labelNames: callLabels,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    inFlight: new Gauge({ name: `${p}_in_flight`, help: `RPCs currently in progress, ${who}.`, labelNames: callLabels, registers }),
    received: new Counter({ name: `${p}_msg_received_total`, help: `Messages received, ${who}.`, labelNames: callLabels, registers }),
    sent: new Counter({ name: `${p}_msg_sent_total`, help: `Messages sent, ${who}.`, labelNames: callLabels, registers }),
  };
  entry[side] = created;
  return created;
}

const GRPC_TYPE: Record<MethodKind, string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

interface MethodLabels {
  readonly call: Record<CallLabel, string>;
  /** Label sets with `grpc_code`, built once per code seen. */
  readonly byCode: Map<number, Record<CodeLabel, string>>;
}

const labelCache = new WeakMap<MethodDefinition, MethodLabels>();

function methodLabels(method: MethodDefinition): MethodLabels {
  let labels = labelCache.get(method);
  if (!labels) {
    const path = method.path.startsWith("/") ? method.path.slice(1) : method.path;
    const slash = path.lastIndexOf("/");
    const call = { grpc_type: GRPC_TYPE[method.kind], grpc_service: slash >= 0 ? path.slice(0, slash) : path, grpc_method: method.name };
    labels = { call, byCode: new Map() };
    labelCache.set(method, labels);
  }
  return labels;
}

function withCode(labels: MethodLabels, code: number): Record<CodeLabel, string> {
  let set = labels.byCode.get(code);
  if (!set) labels.byCode.set(code, (set = { ...labels.call, grpc_code: codeName(code) }));
  return set;
}

/** Options of {@link metricsInterceptor}. */
export interface MetricsInterceptorOptions {
  /** Where to record (default {@link metricsRegistry}). */
  registry?: Registry;
}

/**
 * Records started and handled calls (by status code), latency, in-flight calls and
 * messages sent/received, per method, on whichever side it runs. Servers and clients add
 * one by themselves when given the `metrics` option.
 */
export function metricsInterceptor(options: MetricsInterceptorOptions = {}): Interceptor {
  const registry = options.registry ?? metricsRegistry;
  return (next) => (req) => measure(sideMetrics(registry, req.side), req, next);
}

function measure(m: SideMetrics, req: CallRequest, next: CallNext): Promise<CallResponse> {
  const all = methodLabels(req.method);
  const labels = all.call;
  // On a server the request is received, on a client it is sent; the response the other way round.
  const requestCounter = req.side === "server" ? m.received : m.sent;
  const responseCounter = req.side === "server" ? m.sent : m.received;
  const t0 = performance.now();
  m.started.inc(labels);
  m.inFlight.inc(labels);
  let done = false;
  const finish = (err: unknown) => {
    if (done) return;
    done = true;
    m.inFlight.dec(labels);
    const code = err === undefined ? Status.OK : RpcError.from(err).code;
    m.handled.inc(withCode(all, code));
    m.seconds.observe(labels, (performance.now() - t0) / 1000);
  };

  let call = req;
  if (req.method.requestStream) {
    const source = req.request as AsyncIterable<unknown> | Iterable<unknown>;
    const observed = observeStream(source, { onMessage: () => requestCounter.inc(labels) });
    // A served call's signal is a getter (made on first read): a spread would drop it.
    call = req instanceof ServerCallRequest ? new ServerCallRequest(req.context, observed) : { ...req, signal: req.signal, request: observed };
  } else {
    requestCounter.inc(labels);
  }

  let pending: Promise<CallResponse>;
  try {
    pending = next(call);
  } catch (err) {
    finish(err);
    throw err;
  }
  return pending.then(
    (res) => {
      if (!req.method.responseStream) {
        responseCounter.inc(labels);
        finish(callOutcome(undefined, req));
        return res;
      }
      if (!isAsyncIterable(res.response)) {
        finish(new RpcError(Status.INTERNAL, "streaming call produced no stream"));
        return res;
      }
      const response = observeStream(res.response, {
        onMessage: () => responseCounter.inc(labels),
        onEnd: (err, early) => finish(callOutcome(err, req, early)),
      });
      return { response };
    },
    (err: unknown) => {
      finish(err);
      throw err;
    },
  );
}

