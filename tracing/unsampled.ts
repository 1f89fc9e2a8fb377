/**
 * Spans the sampler is sure to drop, made without the SDK. `setupTracing` knows its own
 * sampler (parent-based, a ratio for new traces), so for most dropped spans the answer is
 * known before the SDK is asked: a parent that was not sampled gives an unsampled child, and
 * a new trace is kept only if the ratio sampler keeps its trace id. In a busy process the
 * SDK's `startSpan` for such a span costs several microseconds (span id, sampler, its span
 * metrics, context look-ups; `bench/trace-gc.ts`, docs/benchmarks.md), about as much as
 * the rest of what tracing adds to a dropped call; making the non-recording span here costs
 * a fraction of that.
 *
 * What the SDK would have returned and what this returns are the same kind of span: a
 * non-recording span that carries the trace id, a new span id, the "not sampled" flag and
 * the parent's `tracestate`. Neither reaches a span processor. The one thing left out is the
 * SDK's own `otel.sdk.span.started` count of dropped spans (reported only when a meter
 * provider is registered).
 */
import { randomFillSync } from "node:crypto";
import { SamplingDecision, SpanKind, TraceFlags, isSpanContextValid, trace, type Context, type Span } from "@opentelemetry/api";
import type { IdGenerator, Sampler } from "@opentelemetry/sdk-trace";
import type { UnsampledShortcut } from "../runtime/tracing-interceptor";

const POOL_BYTES = 4096;

/**
 * Trace and span ids from a pool of random bytes (refilled by `randomFillSync`), and the
 * way to hand the SDK a trace id the shortcut has already judged: the SDK asks for a trace
 * id right after it is asked for a span, synchronously, so the next one it asks for is set.
 */
export class PooledIds implements IdGenerator {
  private readonly pool = Buffer.allocUnsafe(POOL_BYTES);
  private offset = POOL_BYTES;
  private nextTraceId: string | undefined;

  readonly generateTraceId = (): string => {
    const chosen = this.nextTraceId;
    if (chosen !== undefined) {
      this.nextTraceId = undefined;
      return chosen;
    }
    return this.hex(16);
  };

  readonly generateSpanId = (): string => this.hex(8);

  /** The trace id the SDK's next `generateTraceId` returns. */
  useNextTraceId(traceId: string): void {
    this.nextTraceId = traceId;
  }

  /** `bytes` random bytes as lowercase hex, never all zero (an all-zero id is invalid). */
  hex(bytes: number): string {
    if (this.offset + bytes > POOL_BYTES) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const start = this.offset;
    this.offset += bytes;
    let zero = true;
    for (let i = start; i < start + bytes; i++) {
      if (this.pool[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) this.pool[start + bytes - 1] = 1;
    return this.pool.toString("hex", start, start + bytes);
  }
}

/** Whether a context says "do not trace" (OpenTelemetry's `suppressTracing`). */
export type SuppressionCheck = (ctx: Context) => boolean;

/**
 * The shortcut for a `ParentBased` sampler with its default delegates (parents' decisions
 * followed, local or remote) around `root`, which decides new traces.
 */
export function unsampledShortcut(root: Sampler, rootRatio: number, ids: PooledIds, isSuppressed: SuppressionCheck, provider: UnsampledShortcut["provider"]): UnsampledShortcut {
  return {
    provider,
    dropped(parent: Context): Span | undefined {
      // The SDK answers these with its own invalid span; let it.
      if (isSuppressed(parent)) return undefined;
      const parentContext = trace.getSpanContext(parent);
      if (parentContext && isSpanContextValid(parentContext)) {
        if (parentContext.traceFlags & TraceFlags.SAMPLED) return undefined;
        return trace.wrapSpanContext({ traceId: parentContext.traceId, spanId: ids.generateSpanId(), traceFlags: TraceFlags.NONE, traceState: parentContext.traceState });
      }
      if (rootRatio >= 1) return undefined;
      const traceId = ids.generateTraceId();
      if (rootRatio > 0 && root.shouldSample(parent, traceId, "", SpanKind.INTERNAL, {}, []).decision !== SamplingDecision.NOT_RECORD) {
        // Kept: the SDK records it, with this very trace id.
        ids.useNextTraceId(traceId);
        return undefined;
      }
      return trace.wrapSpanContext({ traceId, spanId: ids.generateSpanId(), traceFlags: TraceFlags.NONE });
    },
  };
}
