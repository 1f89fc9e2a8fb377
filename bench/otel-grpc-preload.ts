/**
 * Imported first by the echo workers: when `BENCH_OTEL_GRPC=1`, turns on OpenTelemetry's
 * own `@opentelemetry/instrumentation-grpc` before `@grpc/grpc-js` is loaded (it patches
 * the module as it is required), as a raw grpc-js user who wants traces would. Spans go to
 * the SDK that `traceIntoTheVoid` sets up later, the same one protomesh's tracing uses.
 */
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";

export const otelGrpcInstrumented = process.env.BENCH_OTEL_GRPC === "1";

if (otelGrpcInstrumented) new GrpcInstrumentation();
