import { expect } from "chai";
import { ROOT_CONTEXT, TraceFlags, context, createTraceState, trace, type Context } from "@opentelemetry/api";
import { isTracingSuppressed, suppressTracing } from "@opentelemetry/core";
import { AlwaysOnSampler, InMemorySpanExporter, SimpleSpanProcessor, TraceIdRatioBasedSampler, TracerProvider, SamplingDecision } from "@opentelemetry/sdk-trace";
import { Metadata } from "@grpc/grpc-js";
import { PooledIds, unsampledShortcut } from "./unsampled";
import { setupTracing } from "./setup-tracing";
import { enableTracing, tracingInterceptor } from "../runtime/tracing-interceptor";
import type { CallRequest } from "../runtime/interceptor";
import type { MethodDefinition } from "../runtime/definition";

const parentWith = (traceFlags: number, traceState = createTraceState("vendor=1")): Context =>
  trace.setSpanContext(ROOT_CONTEXT, { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags, traceState, isRemote: true });

describe("tracing: spans the sampler drops, made without the SDK", () => {
  const provider = new TracerProvider();

  describe("PooledIds", () => {
    it("gives lowercase hex ids of the right length, different each time", () => {
      const ids = new PooledIds();
      const traceIds = new Set<string>();
      for (let i = 0; i < 1000; i++) {
        const t = ids.generateTraceId();
        expect(t).to.match(/^[0-9a-f]{32}$/);
        expect(ids.generateSpanId()).to.match(/^[0-9a-f]{16}$/);
        traceIds.add(t);
      }
      expect(traceIds.size).to.equal(1000);
    });

    it("never gives an all-zero id", () => {
      const ids = new PooledIds();
      ids.generateSpanId(); // fills the pool
      (ids as unknown as { pool: Buffer }).pool.fill(0);
      expect(ids.generateTraceId()).to.equal("0".repeat(31) + "1");
      expect(ids.generateSpanId()).to.equal("0".repeat(15) + "1");
    });

    it("hands out a chosen trace id once, then random ones again", () => {
      const ids = new PooledIds();
      ids.useNextTraceId("4bf92f3577b34da6a3ce929d0e0e4736");
      expect(ids.generateTraceId()).to.equal("4bf92f3577b34da6a3ce929d0e0e4736");
      expect(ids.generateTraceId()).to.not.equal("4bf92f3577b34da6a3ce929d0e0e4736");
    });
  });

  describe("unsampledShortcut", () => {
    it("makes the unsampled child of an unsampled parent: same trace, new span id, flag off, tracestate kept", () => {
      const fast = unsampledShortcut(new TraceIdRatioBasedSampler(0.5), 0.5, new PooledIds(), isTracingSuppressed, provider);
      const span = fast.dropped(parentWith(TraceFlags.NONE));
      expect(span, "a span").to.exist;
      expect(span!.isRecording()).to.equal(false);
      const sc = span!.spanContext();
      expect(sc.traceId).to.equal("0af7651916cd43dd8448eb211c80319c");
      expect(sc.spanId).to.match(/^[0-9a-f]{16}$/).and.not.equal("b7ad6b7169203331");
      expect(sc.traceFlags).to.equal(TraceFlags.NONE);
      expect(sc.traceState?.get("vendor")).to.equal("1");
    });

    it("leaves a sampled parent's child, and a context that suppresses tracing, to the SDK", () => {
      const fast = unsampledShortcut(new TraceIdRatioBasedSampler(0), 0, new PooledIds(), isTracingSuppressed, provider);
      expect(fast.dropped(parentWith(TraceFlags.SAMPLED))).to.equal(undefined);
      expect(fast.dropped(suppressTracing(ROOT_CONTEXT))).to.equal(undefined);
    });

    it("drops every new trace at ratio 0 and none at ratio 1", () => {
      const none = unsampledShortcut(new TraceIdRatioBasedSampler(0), 0, new PooledIds(), isTracingSuppressed, provider);
      const all = unsampledShortcut(new AlwaysOnSampler(), 1, new PooledIds(), isTracingSuppressed, provider);
      for (let i = 0; i < 100; i++) {
        expect(none.dropped(ROOT_CONTEXT)?.spanContext().traceFlags).to.equal(TraceFlags.NONE);
        expect(all.dropped(ROOT_CONTEXT)).to.equal(undefined);
      }
    });

    it("decides a new trace as the ratio sampler does, and hands a kept trace's id to the SDK", () => {
      const ratio = 0.3;
      const sampler = new TraceIdRatioBasedSampler(ratio);
      const ids = new PooledIds();
      const fast = unsampledShortcut(sampler, ratio, ids, isTracingSuppressed, provider);
      let kept = 0;
      const N = 4000;
      for (let i = 0; i < N; i++) {
        const span = fast.dropped(ROOT_CONTEXT);
        if (span) {
          const { traceId } = span.spanContext();
          expect(sampler.shouldSample(ROOT_CONTEXT, traceId).decision, `dropped ${traceId}`).to.equal(SamplingDecision.NOT_RECORD);
        } else {
          kept++;
          const traceId = ids.generateTraceId(); // what the SDK asks for next
          expect(sampler.shouldSample(ROOT_CONTEXT, traceId).decision, `kept ${traceId}`).to.equal(SamplingDecision.RECORD_AND_SAMPLED);
        }
      }
      expect(kept / N).to.be.within(0.25, 0.35);
    });
  });

  describe("with setupTracing", () => {
    const method = { path: "/t.S/M", name: "M", requestStream: false, responseStream: false } as unknown as MethodDefinition;
    const signal = new AbortController().signal;
    const clientCall = (): CallRequest => ({ side: "client", method, metadata: new Metadata(), deadline: undefined, signal, peer: "127.0.0.1:1", request: {} });

    it("keeps new traces at the ratio (not the ratio squared), each recorded under the trace id that was judged", async () => {
      const exporter = new InMemorySpanExporter();
      const stop = setupTracing({ serviceName: "shortcut-test", exporter: exporter, sampleRatio: 0.5, exportDelayMs: 1 });
      try {
        const sent: string[] = [];
        const call = tracingInterceptor({ enabled: true })(async (req) => {
          sent.push(String(req.metadata.get("traceparent")[0]));
          return { response: {} };
        });
        const N = 400;
        for (let i = 0; i < N; i++) await call(clientCall());
        await stop.flush();
        const recorded = exporter.getFinishedSpans();
        const sampledHeaders = sent.filter((h) => h.endsWith("-01"));
        expect(recorded.length, "recorded spans = calls sent as sampled").to.equal(sampledHeaders.length);
        expect(recorded.length / N).to.be.within(0.38, 0.62);
        const judge = new TraceIdRatioBasedSampler(0.5);
        for (const span of recorded) expect(judge.shouldSample(ROOT_CONTEXT, span.spanContext().traceId).decision).to.equal(SamplingDecision.RECORD_AND_SAMPLED);
        for (const h of sent.filter((x) => x.endsWith("-00"))) expect(judge.shouldSample(ROOT_CONTEXT, h.split("-")[1]!).decision).to.equal(SamplingDecision.NOT_RECORD);
      } finally {
        await stop();
      }
    });

    it("stops answering once tracing is stopped: a provider registered afterwards decides alone", async () => {
      const first = setupTracing({ serviceName: "shortcut-test", exporter: new InMemorySpanExporter(), sampleRatio: 0, exportDelayMs: 1 });
      await first();
      const exporter = new InMemorySpanExporter();
      const own = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
      trace.setGlobalTracerProvider(own);
      try {
        const call = tracingInterceptor({ enabled: true })(async () => ({ response: {} }));
        for (let i = 0; i < 5; i++) await context.with(ROOT_CONTEXT, () => call(clientCall()));
        expect(exporter.getFinishedSpans()).to.have.length(5);
      } finally {
        trace.disable();
        enableTracing(false);
        await own.shutdown();
      }
    });
  });
});
