/** A span as the Traces page uses it, whatever it came from (OTLP or Jaeger). Times in µs since the epoch. */
export interface TraceSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly service: string;
  readonly name: string;
  readonly kind: "server" | "client" | "internal" | "producer" | "consumer" | "unspecified";
  readonly startUs: number;
  readonly endUs: number;
  readonly status: "ok" | "error" | "unset";
  readonly statusMessage: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

/** One line per trace in search results. */
export interface TraceSummary {
  readonly traceId: string;
  readonly rootService: string;
  readonly rootName: string;
  readonly startUs: number;
  readonly durationUs: number;
  readonly spanCount: number;
  readonly errorCount: number;
  readonly services: readonly string[];
}

export interface TraceQuery {
  readonly service?: string;
  /** Substring of any span's name (`SayHello`, `/greeter.v1.Greeter/`). */
  readonly method?: string;
  readonly status?: "ok" | "error";
  readonly minMs?: number;
  readonly maxMs?: number;
  readonly limit?: number;
}

/** Where traces are read from: the embedded receiver or a Jaeger query API. */
export interface TraceSource {
  readonly name: string;
  search(query: TraceQuery): Promise<TraceSummary[]>;
  get(traceId: string): Promise<TraceSpan[] | undefined>;
}

export function summarize(traceId: string, spans: readonly TraceSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  const root = [...(roots.length ? roots : spans)].sort((a, b) => a.startUs - b.startUs)[0];
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    start = Math.min(start, s.startUs);
    end = Math.max(end, s.endUs);
  }
  return {
    traceId,
    rootService: root?.service ?? "",
    rootName: root?.name ?? "",
    startUs: Number.isFinite(start) ? start : 0,
    durationUs: Number.isFinite(end - start) ? end - start : 0,
    spanCount: spans.length,
    errorCount: spans.filter((s) => s.status === "error").length,
    services: [...new Set(spans.map((s) => s.service))].sort(),
  };
}

export function matchesQuery(summary: TraceSummary, spans: readonly TraceSpan[], q: TraceQuery): boolean {
  if (q.service && !summary.services.includes(q.service)) return false;
  if (q.method && !spans.some((s) => s.name.includes(q.method!))) return false;
  if (q.status === "error" && summary.errorCount === 0) return false;
  if (q.status === "ok" && summary.errorCount > 0) return false;
  if (q.minMs !== undefined && summary.durationUs < q.minMs * 1000) return false;
  if (q.maxMs !== undefined && summary.durationUs > q.maxMs * 1000) return false;
  return true;
}
