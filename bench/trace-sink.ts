/**
 * Tracing for the "tracing on" contenders: the real SDK set-up (`setupTracing`), with an
 * exporter that accepts every batch and drops it, so the cost measured is making, ending
 * and batching spans plus propagating context — not a network exporter.
 */
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import { setupTracing } from "../tracing";

class DiscardingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/**
 * Turns tracing on for this process (parent-based sampler, `sampleRatio` of root spans
 * sampled; every span by default) and returns the exporter to read its count.
 */
export function traceIntoTheVoid(serviceName: string, sampleRatio = 1): DiscardingExporter {
  const exporter = new DiscardingExporter();
  setupTracing({ serviceName, exporter, sampleRatio, exportDelayMs: 200 });
  return exporter;
}
