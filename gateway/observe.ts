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

interface SeriesLabels {
  readonly seconds: { readonly route: string; readonly method: string };
  readonly byStatus: Map<number, { readonly route: string; readonly method: string; readonly status: string }>;
}

// Label objects per route template and method, made once: a request adds no objects for its series.
const labelCache = new Map<string, Map<string, SeriesLabels>>();

/** Counts one answered request and its duration under its route template, method and status. */
export function recordRequest(metrics: GatewayMetrics, route: string, method: string, status: number, seconds: number): void {
  let byMethod = labelCache.get(route);
  if (!byMethod) labelCache.set(route, (byMethod = new Map()));
  let series = byMethod.get(method);
  if (!series) byMethod.set(method, (series = { seconds: { route, method }, byStatus: new Map() }));
  let labels = series.byStatus.get(status);
  if (!labels) series.byStatus.set(status, (labels = { route, method, status: String(status) }));
  metrics.requests.inc(labels);
  metrics.seconds.observe(series.seconds, seconds);
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
