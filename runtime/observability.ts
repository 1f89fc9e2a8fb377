/**
 * The interceptors a server or client adds by itself for its `tracing` and `metrics`
 * options. They go first (outermost), so the span and the timer cover user interceptors.
 */
import type { Registry } from "prom-client";
import type { Interceptor } from "./interceptor";
import { tracingInterceptor } from "./tracing-interceptor";
import { metricsInterceptor } from "./metrics";
import type { MetricsEndpointOptions } from "./metrics-endpoint";

/** Shared by server and client options. */
export interface ObservabilityOptions {
  /**
   * Spans for every call. Unset: on once `setupTracing` (or `enableTracing`) has run, at
   * the cost of one boolean check per call until then. `false`: no tracing interceptor at all.
   */
  tracing?: boolean;
  /** Prometheus metrics: `true` records into protomesh's registry; an object picks the registry. */
  metrics?: boolean | { registry?: Registry };
}

/** A server's `metrics` option: also serve a scrape endpoint when a `port` is given. */
export type ServerMetricsOption = boolean | ({ registry?: Registry } & Pick<MetricsEndpointOptions, "port" | "host" | "path" | "processMetrics">);

/** The built-in interceptors for `options`, outermost first. */
export function builtinInterceptors(options: { tracing?: boolean; metrics?: ServerMetricsOption }): Interceptor[] {
  const list: Interceptor[] = [];
  if (options.tracing !== false) list.push(tracingInterceptor({ enabled: options.tracing }));
  if (options.metrics) list.push(metricsInterceptor({ registry: options.metrics === true ? undefined : options.metrics.registry }));
  return list;
}

/** The scrape endpoint a server's `metrics` option asks for, if any. */
export function metricsEndpointOf(option: ServerMetricsOption | undefined): MetricsEndpointOptions | undefined {
  if (!option || option === true || option.port === undefined) return undefined;
  return {
    port: option.port,
    host: option.host,
    path: option.path,
    processMetrics: option.processMetrics,
    registries: option.registry ? [option.registry] : undefined,
  };
}
