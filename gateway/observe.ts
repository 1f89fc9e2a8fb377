import type { IncomingMessage } from "node:http";
import { context, propagation, trace, ProxyTracerProvider, SpanKind, SpanStatusCode, type Context, type Span, type TextMapGetter } from "@opentelemetry/api";
import type { Metadata } from "@grpc/grpc-js";
import { Counter, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, metricsRegistry } from "../runtime/metrics";
import { metadataSetter } from "../runtime/tracing-interceptor";
import { RpcError, Status } from "../runtime/errors";

/**
 * One server span per HTTP request (HTTP semantic conventions), whose context
 * the gateway injects into the upstream call's metadata, so the upstream's
 * gRPC server span is its child. Prometheus series by route template and
 * status. Both go through the APIs only. Without an OpenTelemetry SDK every
 * span would be a no-op, so none is started: the request costs no span work
 * and the client's own `traceparent`/`tracestate` go upstream untouched.
 */

// What an unset global tracer provider delegates to (the API's no-op provider).
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether a tracer provider is registered with the OpenTelemetry API (by
 * `setupTracing` or the application's own SDK). Checked per request, so one
 * registered after the gateway started is honoured.
 */
export function tracerRegistered(): boolean {
  const provider = trace.getTracerProvider();
  // Another copy of the API, or a provider set some other way: assume it records.
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

const headerGetter: TextMapGetter<IncomingMessage> = {
  keys: (req) => Object.keys(req.headers),
  get: (req, key) => req.headers[key],
};

export interface RequestSpan {
  readonly span: Span;
  readonly ctx: Context;
}

/** Starts the request's span, parented on the client's `traceparent` when it sent one; undefined when no tracer provider is registered. */
export function startRequestSpan(req: IncomingMessage, method: string, route: string | undefined): RequestSpan | undefined {
  if (!tracerRegistered()) return undefined;
  const parent = propagation.extract(context.active(), req, headerGetter);
  const span = trace.getTracer("protomesh.gateway").startSpan(
    route ? `${method} ${route}` : method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "http.request.method": method,
        "url.path": (req.url ?? "/").split("?")[0],
        ...(route ? { "http.route": route } : {}),
        "network.protocol.version": req.httpVersion,
        "client.address": req.socket.remoteAddress ?? "",
      },
    },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Writes the span's trace context into the upstream metadata (replacing the client's). */
export function injectTrace(rs: RequestSpan, md: Metadata): void {
  md.remove("traceparent");
  md.remove("tracestate");
  propagation.inject(rs.ctx, md, metadataSetter);
}

/**
 * The gRPC client span of one upstream attempt (RPC semantic conventions),
 * child of the request's span. With retries, each attempt has its own.
 */
export function startUpstreamSpan(rs: RequestSpan, grpcPath: string, attempt: number): RequestSpan {
  const [service = "", method = ""] = grpcPath.slice(1).split("/");
  const span = trace.getTracer("protomesh.gateway").startSpan(
    `${service}/${method}`,
    { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, ...(attempt > 1 ? { "http.request.resend_count": attempt - 1 } : {}) } },
    rs.ctx,
  );
  return { span, ctx: trace.setSpan(rs.ctx, span) };
}

/** Ends an upstream span with the call's gRPC status (`err` undefined: OK). */
export function endUpstreamSpan(up: RequestSpan, err: unknown): void {
  const code = err instanceof RpcError ? err.code : err === undefined ? Status.OK : Status.UNKNOWN;
  up.span.setAttribute("rpc.grpc.status_code", code);
  if (err !== undefined) up.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  up.span.end();
}

export function endRequestSpan(rs: RequestSpan, status: number, error?: string): void {
  rs.span.setAttribute("http.response.status_code", status);
  if (status >= 500) rs.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  rs.span.end();
}

export interface GatewayMetrics {
  readonly requests: Counter<"route" | "method" | "status">;
  readonly seconds: Histogram<"route" | "method">;
}

type Labels<K extends string> = { readonly [k in K]: string };

/**
 * Where one series lives in a prom-client metric's own table (`hashMap`, keyed by prom-client's
 * label hash, each value holding the labels object it was created with). Found once, through
 * the public API; afterwards a request updates the numbers in place instead of having
 * prom-client hash, validate and look the labels up again. Checked on every use: after a
 * `reset()` (a new table) or a `remove()` (the key gone) the public API is used again and
 * the entry found anew. A table of another shape is never written to.
 */
interface Entry<V> {
  readonly table: Record<string, unknown>;
  readonly key: string;
  readonly value: V;
}

interface CounterValue {
  value: number;
}

interface HistogramValue {
  sum: number;
  count: number;
  readonly bucketValues: Record<string, number>;
}

interface StatusSeries {
  readonly labels: Labels<"route" | "method" | "status">;
  entry: Entry<CounterValue> | undefined;
}

interface RouteSeries {
  readonly labels: Labels<"route" | "method">;
  entry: Entry<HistogramValue> | undefined;
  /** The histogram's upper bounds, and the property names prom-client counts them under in `bucketValues`. */
  bounds: readonly number[];
  bucketKeys: readonly string[];
  readonly byStatus: Map<number, StatusSeries>;
}

// Series per route template and method (and status), made once: a request adds no objects for its series.
const seriesCache = new Map<string, Map<string, RouteSeries>>();

/** Counts one answered request and its duration under its route template, method and status. */
export function recordRequest(metrics: GatewayMetrics, route: string, method: string, status: number, seconds: number): void {
  let byMethod = seriesCache.get(route);
  if (!byMethod) seriesCache.set(route, (byMethod = new Map()));
  let series = byMethod.get(method);
  if (!series) byMethod.set(method, (series = { labels: { route, method }, entry: undefined, bounds: [], bucketKeys: [], byStatus: new Map() }));
  let counted = series.byStatus.get(status);
  if (!counted) series.byStatus.set(status, (counted = { labels: { route, method, status: String(status) }, entry: undefined }));
  count(metrics.requests, counted);
  observe(metrics.seconds, series, seconds);
}

function count(counter: Counter<"route" | "method" | "status">, s: StatusSeries): void {
  const e = s.entry;
  if (e !== undefined && tableOf(counter) === e.table && e.table[e.key] === e.value) {
    e.value.value += 1;
    return;
  }
  counter.inc(s.labels);
  s.entry = entryOf(counter, s.labels, isCounterValue);
}

function observe(histogram: Histogram<"route" | "method">, s: RouteSeries, seconds: number): void {
  const e = s.entry;
  if (e !== undefined && tableOf(histogram) === e.table && e.table[e.key] === e.value && Number.isFinite(seconds)) {
    const v = e.value;
    v.sum += seconds;
    v.count += 1;
    // The bucket prom-client would count: the first bound at or above the value; none above the last (+Inf is the count).
    const bounds = s.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        v.bucketValues[s.bucketKeys[i]] += 1;
        break;
      }
    }
    return;
  }
  histogram.observe(s.labels, seconds);
  const entry = entryOf(histogram, s.labels, isHistogramValue);
  const bounds = (histogram as { upperBounds?: unknown }).upperBounds;
  if (!entry || !Array.isArray(bounds) || !bounds.every((b) => typeof b === "number")) return;
  const keys = bounds.map((b: number) => String(b));
  // Every bound must already be counted under that name, or the table is not what this code knows.
  if (!keys.every((k) => Object.prototype.hasOwnProperty.call(entry.value.bucketValues, k) && typeof entry.value.bucketValues[k] === "number")) return;
  s.bounds = bounds;
  s.bucketKeys = keys;
  s.entry = entry;
}

function tableOf(metric: object): Record<string, unknown> | undefined {
  const table = (metric as { hashMap?: unknown }).hashMap;
  return typeof table === "object" && table !== null ? (table as Record<string, unknown>) : undefined;
}

/** The entry prom-client keeps for exactly this labels object, if its table has the expected shape. */
function entryOf<V>(metric: object, labels: object, shaped: (v: unknown) => v is V): Entry<V> | undefined {
  const table = tableOf(metric);
  if (!table) return undefined;
  for (const key of Object.keys(table)) {
    const value = table[key];
    if (typeof value === "object" && value !== null && (value as { labels?: unknown }).labels === labels) return shaped(value) ? { table, key, value } : undefined;
  }
  return undefined;
}

function isCounterValue(v: unknown): v is CounterValue {
  return typeof (v as CounterValue).value === "number";
}

function isHistogramValue(v: unknown): v is HistogramValue {
  const h = v as HistogramValue;
  return typeof h.sum === "number" && typeof h.count === "number" && typeof h.bucketValues === "object" && h.bucketValues !== null;
}

const families = new WeakMap<Registry, GatewayMetrics>();

/** The gateway's series in `registry` (created once per registry). */
export function gatewayMetrics(registry: Registry = metricsRegistry): GatewayMetrics {
  let m = families.get(registry);
  if (!m) {
    m = {
      requests: new Counter({ name: "protomesh_gateway_requests_total", help: "HTTP requests answered by the gateway, by route template and status.", labelNames: ["route", "method", "status"], registers: [registry] }),
      seconds: new Histogram({ name: "protomesh_gateway_request_seconds", help: "Time to answer an HTTP request, by route template.", labelNames: ["route", "method"], buckets: [...LATENCY_BUCKETS], registers: [registry] }),
    };
    families.set(registry, m);
  }
  return m;
}
