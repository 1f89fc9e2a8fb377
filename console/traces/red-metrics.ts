/**
 * Rate, errors and duration per service. From the instances' Prometheus
 * endpoints when they advertise one (registry metadata `protomesh.metrics`:
 * a port on the instance's host, or a URL): two scrapes of
 * `grpc_server_handled_total` and `grpc_server_handling_seconds` a window
 * apart give the rate, the error share and the mean latency. Services with
 * no metrics endpoint fall back to the server spans the receiver holds.
 */
import type { InstanceRow, ServiceIndex } from "../services/service-index";
import type { TraceStore } from "./trace-store";

export const METRICS_METADATA = "protomesh.metrics";

export interface ServiceRed {
  readonly service: string;
  /** Calls per second. */
  readonly rate: number;
  /** Share of calls that failed, 0–1. */
  readonly errorRatio: number;
  /** Mean (metrics) or median (spans) latency, ms. */
  readonly latencyMs: number;
  readonly p95Ms?: number;
  readonly source: "metrics" | "spans";
  readonly instancesScraped?: number;
}

interface Sample {
  calls: number;
  errors: number;
  seconds: number;
  count: number;
}

const SCRAPE_TIMEOUT_MS = 1500;

export class RedMetrics {
  private previous = new Map<string, { at: number; sample: Sample }>();

  constructor(
    private readonly index: ServiceIndex,
    private readonly store: TraceStore | undefined,
  ) {}

  async compute(windowMs = 5 * 60_000): Promise<ServiceRed[]> {
    const out = new Map<string, ServiceRed>();
    const byService = new Map<string, InstanceRow[]>();
    for (const r of this.allWithMetrics()) {
      const list = byService.get(r.service) ?? [];
      list.push(r);
      byService.set(r.service, list);
    }
    await Promise.all(
      [...byService].map(async ([service, rows]) => {
        const samples = await Promise.all(rows.slice(0, 50).map((r) => scrape(metricsUrl(r)).catch(() => undefined)));
        const ok = samples.filter((s): s is Sample => s !== undefined);
        if (ok.length === 0) return;
        const sum = ok.reduce((a, s) => ({ calls: a.calls + s.calls, errors: a.errors + s.errors, seconds: a.seconds + s.seconds, count: a.count + s.count }), { calls: 0, errors: 0, seconds: 0, count: 0 });
        const now = Date.now();
        const prev = this.previous.get(service);
        this.previous.set(service, { at: now, sample: sum });
        const base = prev && prev.sample.calls <= sum.calls ? prev : { at: now, sample: { calls: 0, errors: 0, seconds: 0, count: 0 } };
        const dt = Math.max(1, (now - base.at) / 1000);
        const dCalls = sum.calls - base.sample.calls;
        const dCount = sum.count - base.sample.count;
        out.set(service, {
          service,
          rate: prev ? dCalls / dt : 0,
          errorRatio: dCalls > 0 ? (sum.errors - base.sample.errors) / dCalls : 0,
          latencyMs: dCount > 0 ? ((sum.seconds - base.sample.seconds) / dCount) * 1000 : 0,
          source: "metrics",
          instancesScraped: ok.length,
        });
      }),
    );
    if (this.store) {
      for (const [service, e] of this.store.serverSpans(windowMs)) {
        if (out.has(service)) continue;
        const sorted = [...e.latenciesMs].sort((a, b) => a - b);
        out.set(service, {
          service,
          rate: e.calls / (windowMs / 1000),
          errorRatio: e.calls ? e.errors / e.calls : 0,
          latencyMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
          p95Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0,
          source: "spans",
        });
      }
    }
    return [...out.values()].sort((a, b) => a.service.localeCompare(b.service));
  }

  private allWithMetrics(): InstanceRow[] {
    const rows: InstanceRow[] = [];
    const total = this.index.size;
    for (let offset = 0; offset < total; offset += 1000) {
      for (const r of this.index.instances({ offset, limit: 1000 }).items) if (r.metadata[METRICS_METADATA]) rows.push(r);
    }
    return rows;
  }
}

export function metricsUrl(r: InstanceRow): string {
  const v = r.metadata[METRICS_METADATA]!;
  if (/^https?:\/\//.test(v)) return v;
  const host = r.address.replace(/:\d+$/, "");
  return `http://${host}:${v}/metrics`;
}

async function scrape(url: string): Promise<Sample> {
  const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return parseRed(await res.text());
}

/** Sums the server-side call counters of one Prometheus text exposition. */
export function parseRed(text: string): Sample {
  const s: Sample = { calls: 0, errors: 0, seconds: 0, count: 0 };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^(grpc_server_handled_total|grpc_server_handling_seconds_sum|grpc_server_handling_seconds_count)(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === "grpc_server_handled_total") {
      s.calls += value;
      if (!/grpc_code="OK"/.test(m[2] ?? "")) s.errors += value;
    } else if (m[1] === "grpc_server_handling_seconds_sum") s.seconds += value;
    else s.count += value;
  }
  return s;
}
