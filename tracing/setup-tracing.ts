/**
 * Sets up the OpenTelemetry SDK for a protomesh process: a tracer provider with a
 * parent-based ratio sampler, the chosen exporters, an AsyncLocalStorage context manager
 * (so a handler's outgoing calls continue its trace) and W3C trace-context propagation.
 */
import { context, propagation, trace } from "@opentelemetry/api";
import type { Sampler, SpanExporter, SpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { enableTracing, setUnsampledShortcut } from "../runtime/tracing-interceptor";
import { resolveTracingOptions, type TracingOptions } from "./options";
import { createExporter } from "./exporters";
import { loadSdk, type OtelSdk } from "./sdk";
import { PooledIds, unsampledShortcut } from "./unsampled";

/**
 * Stops tracing when called: flushes pending spans, shuts the exporters down and
 * unregisters the SDK. `flush()` only sends what is pending.
 */
export interface TracingHandle {
  (): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
  /** The SDK provider, for adding span processors or getting tracers of your own. */
  readonly provider: TracerProvider;
}

let active: TracingHandle | undefined;

/**
 * Starts tracing for this process; servers and clients created with the default
 * `tracing` option start making spans. Call it once, early, and await the returned
 * function before the process exits so the last spans are sent.
 *
 * @example
 *   const stopTracing = setupTracing({ serviceName: "checkout", exporter: "otlp", endpoint: "http://jaeger:4318" });
 *   process.on("SIGTERM", async () => { await server.shutdown(); await stopTracing(); });
 */
export function setupTracing(options: TracingOptions = {}): TracingHandle {
  if (active) throw new Error("setupTracing: tracing is already set up in this process; call the returned function first to set it up again");
  const resolved = resolveTracingOptions(options);
  const sdk = loadSdk();
  const { AsyncLocalStorageContextManager } = sdk.contextAsyncHooks;
  const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = sdk.core;
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = sdk.resources;
  const { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider } = sdk.sdkTrace;

  const spanProcessors: SpanProcessor[] = [];
  for (const entry of resolved.exporters) {
    const exporter: SpanExporter | undefined = typeof entry === "string" ? createExporter(entry, entry === "jaeger" || entry === "otlp" ? resolved.endpoints[entry] : undefined) : entry;
    if (!exporter) continue;
    // stdout gets each span as it ends; network exporters get batches.
    spanProcessors.push(entry === "console" ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter, scheduledDelayMillis: resolved.exportDelayMs }));
  }

  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ ...resolved.resourceAttributes, ...(resolved.serviceName ? { "service.name": resolved.serviceName } : {}) }));

  const ids = new PooledIds();
  const root = rootSamplerFor(sdk, resolved.sampleRatio);
  const provider = new TracerProvider({ resource, sampler: new sdk.sdkTrace.ParentBasedSampler({ root }), spanProcessors, idGenerator: ids });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!trace.setGlobalTracerProvider(provider)) throw new Error("setupTracing: another OpenTelemetry tracer provider is already registered");
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  setUnsampledShortcut(unsampledShortcut(root, resolved.sampleRatio, ids, sdk.core.isTracingSuppressed, provider));
  enableTracing(true);

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      enableTracing(false);
      setUnsampledShortcut(undefined);
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
        if (active === handle) active = undefined;
      }
    })());
  const handle: TracingHandle = Object.assign(shutdown, { flush: () => provider.forceFlush(), shutdown, provider });
  active = handle;
  return handle;
}

/** The sampler of new traces; parents' decisions are followed around it (`ParentBasedSampler`). */
function rootSamplerFor(sdk: OtelSdk, ratio: number): Sampler {
  const { AlwaysOffSampler, AlwaysOnSampler, TraceIdRatioBasedSampler } = sdk.sdkTrace;
  return ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
}
