/**
 * What `setupTracing` accepts, and how the standard OpenTelemetry environment variables
 * (plus `PROTOMESH_TRACING_EXPORTER`) fill in whatever the code leaves out.
 */
import type { Attributes } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace";

/** Where spans go: Jaeger's agent or collector, an OTLP/HTTP receiver, stdout, or nowhere. */
export type ExporterKind = "jaeger" | "otlp" | "console" | "none";

export const EXPORTER_KINDS: readonly ExporterKind[] = ["jaeger", "otlp", "console", "none"];

/** Options of `setupTracing`. Every field is optional; the environment fills the gaps. */
export interface TracingOptions {
  /** `service.name` of every span (env `OTEL_SERVICE_NAME`). */
  serviceName?: string;
  /**
   * One exporter or several (env `PROTOMESH_TRACING_EXPORTER`, else `OTEL_TRACES_EXPORTER`,
   * comma-separated; default `otlp`). A `SpanExporter` object is used as given.
   */
  exporter?: ExporterKind | SpanExporter | ReadonlyArray<ExporterKind | SpanExporter>;
  /**
   * Where the single built-in exporter sends (env `PROTOMESH_TRACING_ENDPOINT`):
   * jaeger `host:port` (UDP agent, default `localhost:6832`) or `http://host:14268/api/traces`
   * (collector); otlp a base URL such as `http://localhost:4318` (`/v1/traces` is added).
   */
  endpoint?: string;
  /** Per-exporter endpoints, when several are used (same forms as `endpoint`). */
  endpoints?: { jaeger?: string; otlp?: string };
  /**
   * Share of new traces to record, 0–1 (env `OTEL_TRACES_SAMPLER_ARG`; default 1). Calls
   * that arrive with a trace context follow the caller's decision.
   */
  sampleRatio?: number;
  /** Extra resource attributes (env `OTEL_RESOURCE_ATTRIBUTES` is read as well). */
  resourceAttributes?: Attributes;
  /** Longest wait before ended spans are sent, in ms (env `OTEL_BSP_SCHEDULE_DELAY`; default 5000). */
  exportDelayMs?: number;
}

/** Options resolved against the environment: what `setupTracing` actually uses. */
export interface ResolvedTracingOptions {
  serviceName: string | undefined;
  exporters: Array<ExporterKind | SpanExporter>;
  endpoints: { jaeger?: string; otlp?: string };
  sampleRatio: number;
  resourceAttributes: Attributes;
  exportDelayMs: number;
}

/** Reads the tracing environment variables; explicit `options` win field by field. */
export function resolveTracingOptions(options: TracingOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedTracingOptions {
  const exporters = toList(options.exporter ?? parseKinds(env.PROTOMESH_TRACING_EXPORTER ?? env.OTEL_TRACES_EXPORTER) ?? "otlp");
  const endpoints: { jaeger?: string; otlp?: string } = { ...options.endpoints };
  const single = options.endpoint ?? nonEmpty(env.PROTOMESH_TRACING_ENDPOINT);
  const builtIn = exporters.filter((e): e is "jaeger" | "otlp" => e === "jaeger" || e === "otlp");
  if (single !== undefined) {
    if (builtIn.length !== 1) throw new TypeError("setupTracing: `endpoint` needs exactly one jaeger or otlp exporter; use `endpoints` for several");
    endpoints[builtIn[0]!] ??= single;
  }
  endpoints.otlp ??= nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return {
    serviceName: options.serviceName ?? nonEmpty(env.OTEL_SERVICE_NAME),
    exporters,
    endpoints,
    sampleRatio: checkRatio(options.sampleRatio ?? ratioFromEnv(env)),
    resourceAttributes: { ...options.resourceAttributes },
    exportDelayMs: checkDelay(options.exportDelayMs ?? numberFromEnv(env.OTEL_BSP_SCHEDULE_DELAY, "OTEL_BSP_SCHEDULE_DELAY") ?? 5000),
  };
}

/**
 * Whether the environment asks for spans at all, for a process that sets tracing up only then:
 * an exporter other than `none` named in `PROTOMESH_TRACING_EXPORTER` / `OTEL_TRACES_EXPORTER`,
 * or, with none named, an OTLP or protomesh endpoint (the variables `resolveTracingOptions` reads).
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  const kinds = parseKinds(env.PROTOMESH_TRACING_EXPORTER ?? env.OTEL_TRACES_EXPORTER);
  if (kinds !== undefined) return kinds.some((k) => k !== "none");
  return [env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, env.PROTOMESH_TRACING_ENDPOINT].some((v) => nonEmpty(v) !== undefined);
}

function toList(value: NonNullable<TracingOptions["exporter"]>): Array<ExporterKind | SpanExporter> {
  const list = Array.isArray(value) ? [...value] : [value as ExporterKind | SpanExporter];
  for (const e of list) {
    if (typeof e === "string" && !(EXPORTER_KINDS as readonly string[]).includes(e)) throw new TypeError(`setupTracing: unknown exporter "${e}" (use ${EXPORTER_KINDS.join(", ")})`);
  }
  return list;
}

function parseKinds(value: string | undefined): ExporterKind[] | undefined {
  const v = nonEmpty(value);
  if (v === undefined) return undefined;
  return v.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean) as ExporterKind[];
}

/** `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, reduced to a ratio. */
function ratioFromEnv(env: NodeJS.ProcessEnv): number {
  const sampler = (nonEmpty(env.OTEL_TRACES_SAMPLER) ?? "").toLowerCase();
  if (sampler === "always_off" || sampler === "parentbased_always_off") return 0;
  if (sampler === "always_on" || sampler === "parentbased_always_on") return 1;
  const arg = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
  if (arg === undefined) return 1;
  const ratio = Number(arg);
  if (Number.isNaN(ratio)) throw new TypeError(`setupTracing: OTEL_TRACES_SAMPLER_ARG must be a number in 0–1, got "${arg}"`);
  return ratio;
}

function checkRatio(ratio: number): number {
  if (typeof ratio !== "number" || Number.isNaN(ratio) || ratio < 0 || ratio > 1) throw new RangeError(`setupTracing: sampleRatio must be in 0–1, got ${String(ratio)}`);
  return ratio;
}

function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`setupTracing: exportDelayMs must be a non-negative number, got ${String(ms)}`);
  return ms;
}

function numberFromEnv(value: string | undefined, name: string): number | undefined {
  const v = nonEmpty(value);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (Number.isNaN(n)) throw new TypeError(`setupTracing: ${name} must be a number, got "${v}"`);
  return n;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}
