import { requireOptional } from "../runtime/optional-dependency";

/**
 * The OpenTelemetry SDK packages `setupTracing` builds on. They are optional peers of
 * protomesh (the runtime needs only `@opentelemetry/api`), loaded when tracing is set up,
 * so a service that never calls `setupTracing` neither installs nor loads them.
 */
export interface OtelSdk {
  readonly sdkTrace: typeof import("@opentelemetry/sdk-trace");
  readonly resources: typeof import("@opentelemetry/resources");
  readonly core: typeof import("@opentelemetry/core");
  readonly contextAsyncHooks: typeof import("@opentelemetry/context-async-hooks");
}

/** The SDK line protomesh is tested with (all four packages share it). */
export const OTEL_SDK_RANGE = "~2.11.0";

let loaded: OtelSdk | undefined;

/** Loads the SDK packages, or throws `MissingDependencyError` naming the one to install. */
export function loadSdk(): OtelSdk {
  const need = <T>(name: string): T => requireOptional<T>(name, "setupTracing (protomesh/tracing)", OTEL_SDK_RANGE);
  loaded ??= {
    sdkTrace: need("@opentelemetry/sdk-trace"),
    resources: need("@opentelemetry/resources"),
    core: need("@opentelemetry/core"),
    contextAsyncHooks: need("@opentelemetry/context-async-hooks"),
  };
  return loaded;
}
