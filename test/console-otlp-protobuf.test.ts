import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { expect } from "chai";
import { gzipSync } from "node:zlib";
import { startConsole, type RunningConsole } from "../console";
import { RpcStatus } from "../gen/protomesh/console/v1/otlp_trace";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";

// OTLP/HTTP's default encoding is protobuf: the OpenTelemetry SDK's own protobuf exporter
// sends to a running console, and the spans come back through the Traces API.

/** A call chain A → (B ∥ C) made by the real SDK for `service`; returns the finished spans. */
async function chain(service: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes({ "service.name": service }), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  const tracer = provider.getTracer("console-otlp-spec");
  // Explicit times (ms since the epoch): B and C overlap, so they ran in parallel.
  const t = Date.now();
  const a = tracer.startSpan("/shop.Shop/Buy", { kind: SpanKind.SERVER, startTime: t });
  const inA = trace.setSpan(context.active(), a);
  const b = tracer.startSpan("/stock.Stock/Reserve", { kind: SpanKind.CLIENT, startTime: t + 1, attributes: { "rpc.grpc.status_code": 14 } }, inA);
  const c = tracer.startSpan("/pay.Pay/Charge", { kind: SpanKind.CLIENT, startTime: t + 2 }, inA);
  b.setStatus({ code: SpanStatusCode.ERROR, message: "stock service unavailable" });
  b.end(t + 5);
  c.end(t + 4);
  a.end(t + 6);
  await provider.forceFlush();
  const spans = [...memory.getFinishedSpans()];
  await provider.shutdown();
  return spans;
}

function exportWith(exporter: OTLPTraceExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

describe("console: OTLP/HTTP protobuf trace receiver (the SDK's protobuf exporter, real etcd)", function () {
  this.timeout(60_000);
  const fixture = useEmbeddedEtcd();
  let running: RunningConsole;
  let cookie: string;

  before(async () => {
    running = await startConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), port: 0 });
    const session = await fetch(`${running.url}api/session`);
    cookie = session.headers.get("set-cookie")!.split(";")[0]!;
  });
  after(async () => {
    await running?.close();
  });

  const api = async (path: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${running.url}${path}`, { headers: { cookie } });
    expect(res.status, path).to.equal(200);
    return (await res.json()) as Record<string, unknown>;
  };

  for (const compression of ["none", "gzip"] as const) {
    it(`takes the exporter's protobuf export (${compression === "gzip" ? "gzip-compressed" : "uncompressed"}) and shows the trace with its parallel calls and error`, async () => {
      const service = `otlp-proto-${compression}`;
      const spans = await chain(service);
      const exporter = new OTLPTraceExporter({ url: `${running.url}v1/traces`, compression: compression === "gzip" ? ("gzip" as never) : ("none" as never) });
      try {
        const result = await exportWith(exporter, spans);
        expect(result.code, String(result.error)).to.equal(ExportResultCode.SUCCESS);
      } finally {
        await exporter.shutdown();
      }
      const traceId = spans[0]!.spanContext().traceId;
      const search = (await api(`api/traces?service=${service}`)) as { traces: { traceId: string; spanCount: number; errorCount: number; rootName: string }[] };
      expect(search.traces).to.have.length(1);
      expect(search.traces[0]).to.deep.include({ traceId, spanCount: 3, errorCount: 1, rootName: "/shop.Shop/Buy" });
      const one = (await api(`api/traces/${traceId}`)) as { rows: { span: { name: string; status: string; statusMessage: string; attributes: Record<string, unknown> }; stage: number; parallel: boolean }[] };
      const byName = new Map(one.rows.map((r) => [r.span.name, r]));
      expect(byName.get("/stock.Stock/Reserve")!.span).to.deep.include({ status: "error", statusMessage: "stock service unavailable" });
      expect(byName.get("/stock.Stock/Reserve")!.span.attributes).to.deep.equal({ "rpc.grpc.status_code": 14 });
      // B and C ran side by side under A: the call tree puts them in the same stage.
      expect(byName.get("/stock.Stock/Reserve")).to.deep.include({ parallel: true, stage: byName.get("/pay.Pay/Charge")!.stage });
    });
  }

  it("answers garbage protobuf 400 with a google.rpc.Status in protobuf that says what is wrong", async () => {
    const res = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: Buffer.from([0x0a, 0x05, 0x01]) });
    expect(res.status).to.equal(400);
    expect(res.headers.get("content-type")).to.equal("application/x-protobuf");
    const status = RpcStatus.decode(new Uint8Array(await res.arrayBuffer()));
    expect(status.code).to.equal(3); // INVALID_ARGUMENT
    expect(status.message).to.match(/not a protobuf ExportTraceServiceRequest/);
    const badGzip = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf", "content-encoding": "gzip" }, body: "not gzip" });
    expect(badGzip.status).to.equal(400);
    expect(RpcStatus.decode(new Uint8Array(await badGzip.arrayBuffer())).message).to.match(/gzip/);
  });

  it("refuses a body over the limit, also when it only grows that large once decompressed", async () => {
    const bomb = gzipSync(Buffer.alloc(9 << 20));
    const res = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf", "content-encoding": "gzip" }, body: bomb });
    expect(res.status).to.equal(413);
    expect(RpcStatus.decode(new Uint8Array(await res.arrayBuffer())).message).to.match(/over 8388608 bytes once decompressed/);
    const json = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: bomb });
    expect(json.status).to.equal(413);
  });

  it("answers a content type it does not take 415, naming the ones it does", async () => {
    const res = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" });
    expect(res.status).to.equal(415);
    const { error } = (await res.json()) as { error: string };
    expect(error).to.include("application/x-protobuf").and.include("application/json").and.include("text/plain");
    const br = await fetch(`${running.url}v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf", "content-encoding": "br" }, body: "x" });
    expect(br.status).to.equal(415);
    expect(RpcStatus.decode(new Uint8Array(await br.arrayBuffer())).message).to.match(/"br" is not supported: send gzip/);
  });
});
