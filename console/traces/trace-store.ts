/**
 * The embedded receiver's memory: the last N traces (default 1,000), oldest
 * dropped first, with caps on spans per trace and in all, so a chatty fleet
 * costs bounded memory. Also keeps per-service server-span counts for the
 * RED view when no metrics endpoint is known.
 */
import { matchesQuery, summarize, type TraceQuery, type TraceSource, type TraceSpan, type TraceSummary } from "./span";

export interface TraceStoreOptions {
  readonly maxTraces?: number;
  readonly maxSpansPerTrace?: number;
  readonly maxSpans?: number;
}

export class TraceStore implements TraceSource {
  readonly name = "memory";
  private readonly traces = new Map<string, TraceSpan[]>();
  private spanCount = 0;
  private readonly maxTraces: number;
  private readonly maxSpansPerTrace: number;
  private readonly maxSpans: number;
  private readonly listeners = new Set<(traceIds: string[]) => void>();

  constructor(options: TraceStoreOptions = {}) {
    this.maxTraces = options.maxTraces ?? 1000;
    this.maxSpansPerTrace = options.maxSpansPerTrace ?? 5000;
    this.maxSpans = options.maxSpans ?? 200_000;
  }

  add(spans: readonly TraceSpan[]): void {
    const touched = new Set<string>();
    for (const span of spans) {
      let list = this.traces.get(span.traceId);
      if (!list) {
        list = [];
        this.traces.set(span.traceId, list);
      }
      if (list.length >= this.maxSpansPerTrace || list.some((s) => s.spanId === span.spanId)) continue;
      list.push(span);
      this.spanCount++;
      touched.add(span.traceId);
    }
    while (this.traces.size > this.maxTraces || this.spanCount > this.maxSpans) {
      const oldest = this.traces.keys().next().value;
      if (oldest === undefined) break;
      this.spanCount -= this.traces.get(oldest)?.length ?? 0;
      this.traces.delete(oldest);
    }
    if (touched.size > 0) for (const l of this.listeners) l([...touched]);
  }

  onAdd(listener: (traceIds: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): { traces: number; spans: number } {
    return { traces: this.traces.size, spans: this.spanCount };
  }

  async search(query: TraceQuery): Promise<TraceSummary[]> {
    const limit = Math.min(Math.max(1, query.limit ?? 50), 500);
    const out: TraceSummary[] = [];
    for (const [id, spans] of this.traces) {
      const summary = summarize(id, spans);
      if (matchesQuery(summary, spans, query)) out.push(summary);
    }
    return out.sort((a, b) => b.startUs - a.startUs).slice(0, limit);
  }

  async get(traceId: string): Promise<TraceSpan[] | undefined> {
    return this.traces.get(traceId.toLowerCase());
  }

  /** Server spans of the last `windowMs`, per service: calls, errors, latencies (ms). */
  serverSpans(windowMs: number): Map<string, { calls: number; errors: number; latenciesMs: number[] }> {
    const since = (Date.now() - windowMs) * 1000;
    const out = new Map<string, { calls: number; errors: number; latenciesMs: number[] }>();
    for (const spans of this.traces.values()) {
      for (const s of spans) {
        if (s.kind !== "server" || s.startUs < since) continue;
        const e = out.get(s.service) ?? { calls: 0, errors: 0, latenciesMs: [] };
        e.calls++;
        if (s.status === "error") e.errors++;
        e.latenciesMs.push((s.endUs - s.startUs) / 1000);
        out.set(s.service, e);
      }
    }
    return out;
  }
}
