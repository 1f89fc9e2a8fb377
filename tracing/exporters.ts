/**
 * Builds the span exporters `setupTracing` was asked for. The Jaeger exporter speaks
 * Jaeger's own Thrift protocol (UDP to an agent, or HTTP to a collector); the OTLP one
 * sends OTLP/HTTP with JSON bodies, which Jaeger (port 4318) and any OpenTelemetry
 * Collector ingest natively.
 */
import type { ExporterConfig as JaegerConfig } from "@opentelemetry/exporter-jaeger";
import type { SpanExporter } from "@opentelemetry/sdk-trace";
import { requireOptional } from "../runtime/optional-dependency";
import { loadSdk, OTEL_SDK_RANGE } from "./sdk";
import type { ExporterKind } from "./options";

/** The OTLP exporter follows its own version line (0.x) beside the SDK's 2.x. */
const OTLP_EXPORTER_RANGE = "~0.222.0";

/** Default OTLP/HTTP receiver (Jaeger's or a collector's). */
export const DEFAULT_OTLP_ENDPOINT = "http://localhost:4318";

/**
 * Returns the exporter for `kind`, or undefined for `none`. Exporter packages load only
 * when chosen (the Jaeger one alone adds ~80 ms to start-up).
 */
export function createExporter(kind: ExporterKind, endpoint: string | undefined): SpanExporter | undefined {
  switch (kind) {
    case "jaeger": {
      const { JaegerExporter } = requireOptional<typeof import("@opentelemetry/exporter-jaeger")>("@opentelemetry/exporter-jaeger", "setupTracing's jaeger exporter", OTEL_SDK_RANGE);
      return new JaegerExporter(jaegerConfig(endpoint));
    }
    case "otlp": {
      const { OTLPTraceExporter } = requireOptional<typeof import("@opentelemetry/exporter-trace-otlp-http")>("@opentelemetry/exporter-trace-otlp-http", "setupTracing's otlp exporter", OTLP_EXPORTER_RANGE);
      return new OTLPTraceExporter({ url: otlpTracesUrl(endpoint ?? DEFAULT_OTLP_ENDPOINT) });
    }
    case "console":
      return new (loadSdk().sdkTrace.ConsoleSpanExporter)();
    case "none":
      return undefined;
  }
}

/**
 * `host:port` is a Jaeger agent (UDP); an `http(s)://` URL is a collector. Without an
 * endpoint the exporter reads `OTEL_EXPORTER_JAEGER_*` itself (default agent `localhost:6832`).
 */
function jaegerConfig(endpoint: string | undefined): JaegerConfig {
  if (endpoint === undefined) return {};
  if (/^https?:\/\//i.test(endpoint)) return { endpoint };
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(endpoint);
  if (!match) throw new TypeError(`setupTracing: jaeger endpoint must be host:port or an http(s) URL, got "${endpoint}"`);
  return { host: match[1] ?? match[2], port: match[3] === undefined ? undefined : Number(match[3]) };
}

/** A base URL gets the OTLP traces path; a URL that already names it is kept. */
export function otlpTracesUrl(endpoint: string): string {
  const url = endpoint.replace(/\/+$/, "");
  return url.endsWith("/v1/traces") ? url : `${url}/v1/traces`;
}
