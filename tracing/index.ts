/**
 * protomesh/tracing: the OpenTelemetry SDK and exporters for protomesh processes. The
 * runtime itself depends only on `@opentelemetry/api`; import this where you start a
 * process to send its spans to Jaeger, an OTLP receiver or the console.
 */
export { setupTracing, type TracingHandle } from "./setup-tracing";
export { resolveTracingOptions, type TracingOptions, type ResolvedTracingOptions, type ExporterKind } from "./options";
export { createExporter, otlpTracesUrl, DEFAULT_OTLP_ENDPOINT } from "./exporters";
export { enableTracing, isTracingEnabled } from "../runtime/tracing-interceptor";
