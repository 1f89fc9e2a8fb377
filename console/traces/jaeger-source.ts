/**
 * Reads traces from a Jaeger query service (`/api/traces`, the HTTP JSON API
 * its UI uses) for production, where traces live in Jaeger's storage rather
 * than in the console's memory. Every request has a deadline.
 */
import { matchesQuery, summarize, type TraceQuery, type TraceSource, type TraceSpan, type TraceSummary } from "./span";

const TIMEOUT_MS = 5000;

interface JaegerTag {
  key: string;
  type?: string;
  value: unknown;
}
interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: { refType: string; traceID: string; spanID: string }[];
  startTime: number;
  duration: number;
  tags?: JaegerTag[];
  processID: string;
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export class JaegerSource implements TraceSource {
  readonly name = "jaeger";
  private readonly base: string;

  constructor(baseUrl: string) {
    this.base = baseUrl.replace(/\/+$/, "");
  }

  async search(query: TraceQuery): Promise<TraceSummary[]> {
    if (!query.service) throw new Error("Jaeger needs a service to search by");
    const params = new URLSearchParams({ service: query.service, limit: String(Math.min(query.limit ?? 50, 500)), lookback: "1h" });
    if (query.minMs !== undefined) params.set("minDuration", `${query.minMs}ms`);
    if (query.maxMs !== undefined) params.set("maxDuration", `${query.maxMs}ms`);
    if (query.status === "error") params.set("tags", JSON.stringify({ error: "true" }));
    const traces = await this.fetch(`/api/traces?${params}`);
    return traces
      .map((t) => ({ t, spans: convertTrace(t) }))
      .map(({ t, spans }) => ({ summary: summarize(t.traceID, spans), spans }))
      .filter(({ summary, spans }) => matchesQuery(summary, spans, query))
      .map(({ summary }) => summary)
      .sort((a, b) => b.startUs - a.startUs);
  }

  async get(traceId: string): Promise<TraceSpan[] | undefined> {
    if (!/^[0-9a-f]{1,32}$/i.test(traceId)) return undefined;
    try {
      const traces = await this.fetch(`/api/traces/${traceId}`);
      return traces[0] ? convertTrace(traces[0]) : undefined;
    } catch (err) {
      if ((err as Error).message.includes("HTTP 404")) return undefined;
      throw err;
    }
  }

  private async fetch(path: string): Promise<JaegerTrace[]> {
    const res = await fetch(this.base + path, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!res.ok) throw new Error(`Jaeger query at ${this.base} answered HTTP ${res.status}`);
    const body = (await res.json()) as { data?: unknown };
    return Array.isArray(body.data) ? (body.data as JaegerTrace[]) : [];
  }
}

/** Jaeger's JSON trace → spans (ids padded to OTLP widths, times in µs). */
export function convertTrace(trace: JaegerTrace): TraceSpan[] {
  return (trace.spans ?? []).map((s) => {
    const tags = Object.fromEntries((s.tags ?? []).map((t) => [t.key, t.value as string | number | boolean]));
    const parent = s.references?.find((r) => r.refType === "CHILD_OF") ?? s.references?.[0];
    const error = tags.error === true || tags.error === "true" || tags["otel.status_code"] === "ERROR";
    const kind = String(tags["span.kind"] ?? "unspecified");
    return {
      traceId: s.traceID.padStart(32, "0"),
      spanId: s.spanID.padStart(16, "0"),
      ...(parent ? { parentSpanId: parent.spanID.padStart(16, "0") } : {}),
      service: trace.processes?.[s.processID]?.serviceName ?? "unknown",
      name: s.operationName,
      kind: (["server", "client", "internal", "producer", "consumer"].includes(kind) ? kind : "unspecified") as TraceSpan["kind"],
      startUs: s.startTime,
      endUs: s.startTime + s.duration,
      status: error ? "error" : tags["otel.status_code"] === "OK" ? "ok" : "unset",
      statusMessage: String(tags["otel.status_description"] ?? ""),
      attributes: tags,
    };
  });
}
