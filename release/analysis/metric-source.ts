/**
 * Where an analysis gets canary and stable numbers for the last interval: a Prometheus server
 * (PromQL templates), or the instances' own `/metrics` scraped directly when there is none.
 */
import type { Etcd3 } from "etcd3";
import type { Labels } from "../../runtime/balancing/rule-builders";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import { listInstances } from "../instances";
import { labelName } from "../prometheus/sd-targets";
import { DEFAULT_QUERIES, type AnalysisSpec, type PromQueries } from "./analysis-spec";
import type { SideSample } from "./judge";
import { add, EMPTY_COUNTERS, parseCallCounters, quantile, subtract, type CallCounters } from "./prom-text";

export interface Sides {
  readonly canary: SideSample;
  readonly stable: SideSample;
}

export interface MetricSource {
  /**
   * Numbers for the last `intervalMs`; `undefined` when the source had to take a baseline first
   * (direct scraping after a start or restart), so the caller measures again one interval later.
   */
  measure(service: string, canary: Labels, stable: Labels, intervalMs: number): Promise<Sides | undefined>;
}

const FETCH_TIMEOUT_MS = 5000;

/** Matches `labels` the way traffic-rule subsets do (`version`, `zone`, `id`, else metadata; a list means any). */
export function matchesLabels(instance: InstanceInfo, labels: Labels): boolean {
  return Object.entries(labels).every(([key, want]) => {
    const have = key === "version" ? instance.version : key === "zone" ? instance.zone : key === "id" ? instance.id : instance.metadata[key];
    return have !== undefined && (Array.isArray(want) ? want.includes(have) : have === want);
  });
}

/** Scrapes every instance's `metrics_port` and reports the growth since the previous scrape. */
export class ScrapeSource implements MetricSource {
  private readonly previous = new Map<string, CallCounters>();

  constructor(private readonly etcd: Etcd3, private readonly namespace: string) {}

  async measure(service: string, canary: Labels, stable: Labels): Promise<Sides | undefined> {
    const { instances } = await listInstances(this.etcd, this.namespace, service);
    const scraped = await Promise.all(instances.map(async (i) => ({ instance: i, counters: await scrape(i) })));
    let baseline = this.previous.size === 0;
    const sums = { canary: EMPTY_COUNTERS, stable: EMPTY_COUNTERS };
    const seen = new Set<string>();
    for (const { instance, counters } of scraped) {
      if (!counters) continue;
      seen.add(instance.id);
      const before = this.previous.get(instance.id);
      this.previous.set(instance.id, counters);
      // A newcomer's first scrape is its baseline: its earlier calls fall outside the interval.
      if (!before) continue;
      const delta = subtract(counters, before);
      if (matchesLabels(instance, canary)) sums.canary = add(sums.canary, delta);
      else if (matchesLabels(instance, stable)) sums.stable = add(sums.stable, delta);
    }
    for (const id of [...this.previous.keys()]) if (!seen.has(id)) this.previous.delete(id);
    if (baseline) return undefined;
    return { canary: sample(sums.canary), stable: sample(sums.stable) };
  }
}

function sample(c: CallCounters): SideSample {
  return { requests: c.requests, errors: c.errors, latencyP99: quantile(0.99, c.buckets) };
}

async function scrape(instance: InstanceInfo): Promise<CallCounters | undefined> {
  const port = instance.metadata.metrics_port;
  if (port === undefined) return undefined;
  const host = instance.address.slice(0, instance.address.lastIndexOf(":"));
  try {
    const res = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok) return undefined;
    return parseCallCounters(await res.text());
  } catch {
    // An instance that cannot be scraped contributes nothing this interval; too few requests is then "no data".
    return undefined;
  }
}

/** Asks a Prometheus server with the (user-changeable) PromQL templates. */
export class PrometheusSource implements MetricSource {
  private readonly queries: PromQueries;

  constructor(private readonly url: string, queries: Partial<PromQueries> = {}) {
    this.queries = { ...DEFAULT_QUERIES, ...queries };
  }

  async measure(service: string, canary: Labels, stable: Labels, intervalMs: number): Promise<Sides> {
    const [c, s] = await Promise.all([this.side(service, canary, intervalMs), this.side(service, stable, intervalMs)]);
    return { canary: c, stable: s };
  }

  private async side(service: string, labels: Labels, intervalMs: number): Promise<SideSample> {
    const vars = { selector: selectorOf(service, labels), interval: `${Math.max(1, Math.round(intervalMs / 1000))}s` };
    const [requests, errors, latencyP99] = await Promise.all([this.query(fill(this.queries.requests, vars)), this.query(fill(this.queries.errors, vars)), this.query(fill(this.queries.latencyP99, vars))]);
    return { requests: requests ?? 0, errors: errors ?? 0, latencyP99 };
  }

  /** The first sample of an instant query; undefined for an empty result or NaN. */
  async query(promql: string): Promise<number | undefined> {
    const url = `${this.url.replace(/\/$/, "")}/api/v1/query?query=${encodeURIComponent(promql)}`;
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const body = (await res.json().catch(() => undefined)) as { status?: string; error?: string; data?: { result?: Array<{ value?: [number, string] }> } } | undefined;
    if (!res.ok || body?.status !== "success") throw new Error(`Prometheus query failed (${res.status}): ${body?.error ?? "no JSON answer"}: ${promql}`);
    const raw = body.data?.result?.[0]?.value?.[1];
    const value = raw === undefined ? NaN : Number(raw);
    return Number.isFinite(value) ? value : undefined;
  }
}

/** `service="greeter",version="v2",grpc_service!~"grpc\\..*"`: the subset's series, probes left out. */
export function selectorOf(service: string, labels: Labels): string {
  const quote = (v: string) => JSON.stringify(v);
  const parts = [`service=${quote(service)}`];
  for (const [k, v] of Object.entries(labels)) {
    const name = labelName(k);
    parts.push(Array.isArray(v) ? `${name}=~${quote(v.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"))}` : `${name}=${quote(v)}`);
  }
  parts.push(`grpc_service!~"grpc\\\\..*"`);
  return parts.join(",");
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (all, name: string) => vars[name] ?? all);
}

/** The source an analysis spec names. */
export function sourceFor(spec: AnalysisSpec, etcd: Etcd3, namespace: string): MetricSource {
  return spec.source.kind === "prometheus" ? new PrometheusSource(spec.source.url, spec.source.queries) : new ScrapeSource(etcd, namespace);
}
