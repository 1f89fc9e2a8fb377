import { context, SpanKind, SpanStatusCode, trace, type Link } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { expect } from "chai";
import * as fc from "fast-check";
import { ExportTraceServiceRequest, Span } from "../../gen/protomesh/console/v1/otlp_trace";
import { decodeOtlpJson } from "./otlp-json";
import { decodeOtlpProtobuf, encodeOtlpResponse, encodeRpcStatus, otlpProtobufToJson } from "./otlp-protobuf";

// The OpenTelemetry SDK's own serializers write the same spans both ways; the two paths must agree.

/** Spans made by the real SDK, with every kind of attribute value, an event, a link and an error status. */
async function sdkSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "checkout", "deployment.environment": "test", "host.cores": 2 }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer("checkout-lib", "1.2.3", { schemaUrl: "https://opentelemetry.io/schemas/1.30.0" });
  const other = tracer.startSpan("batch");
  other.end();
  const link: Link = { context: other.spanContext(), attributes: { "link.reason": "batched", "link.n": 3 } };
  const parent = tracer.startSpan("/shop.Shop/Buy", { kind: SpanKind.SERVER });
  const child = tracer.startSpan(
    "/stock.Stock/Reserve",
    {
      kind: SpanKind.CLIENT,
      links: [link],
      attributes: { "rpc.system": "grpc", "rpc.grpc.status_code": 14, "retry.backoff": 2.5, "cache.hit": false, tags: ["x", "y"], sizes: [1, 2], flags: [true] },
    },
    trace.setSpan(context.active(), parent),
  );
  child.addEvent("retry", { attempt: 2, "error.type": "UNAVAILABLE" });
  child.setStatus({ code: SpanStatusCode.ERROR, message: "stock service unavailable" });
  child.end();
  parent.setStatus({ code: SpanStatusCode.OK });
  parent.end();
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  // Bytes and key-value lists cannot be set through the span API, but OTLP carries them
  // (logs and other SDKs send them): put them on the finished span the serializers read.
  const reserve = spans.find((s) => s.name === "/stock.Stock/Reserve")!;
  Object.assign(reserve.attributes, { "payload.bytes": new Uint8Array([0, 1, 254, 255]), "peer.labels": { zone: "eu-1", weight: 3, tags: ["a", { deep: true }] } });
  return spans;
}

/** Both encodings' objects compared as data: defaults left out, integers as decimal strings (JSON may use either). */
function normalize(x: unknown): unknown {
  if (Array.isArray(x)) return x.length ? x.map(normalize) : undefined;
  if (typeof x === "number") return Number.isInteger(x) ? (x === 0 ? undefined : String(x)) : x;
  if (x === "" || x === false) return undefined;
  if (typeof x !== "object" || x === null) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) {
    const n = normalize(v);
    if (n !== undefined) out[k] = n;
  }
  return Object.keys(out).length ? out : undefined;
}

describe("console OTLP protobuf decoding", () => {
  let spans: ReadableSpan[];
  let json: unknown;
  let proto: Uint8Array;

  before(async () => {
    spans = await sdkSpans();
    json = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!).toString("utf8"));
    proto = ProtobufTraceSerializer.serializeRequest(spans)!;
  });

  it("reads a protobuf export as the same OTLP data the JSON encoding carries: resource, scope, ids, times, attributes of every kind, events, links, status", () => {
    const fromProto = otlpProtobufToJson(proto);
    expect(normalize(fromProto)).to.deep.equal(normalize(json));
    // Guard against both sides losing the same thing: the parts compared are really there.
    const text = JSON.stringify(fromProto);
    for (const part of ["deployment.environment", "checkout-lib", "1.2.3", "schemas/1.30.0", "link.reason", "error.type", "AAH+/w==", "kvlistValue", "arrayValue", "doubleValue", "boolValue"]) {
      expect(text, part).to.include(part);
    }
  });

  it("gives the same spans from protobuf as from JSON, with ids as hex and every attribute value kept", () => {
    const fromProto = decodeOtlpProtobuf(proto);
    expect(fromProto).to.deep.equal(decodeOtlpJson(json));
    expect(fromProto.rejected).to.equal(0);
    const reserve = fromProto.spans.find((s) => s.name === "/stock.Stock/Reserve")!;
    const buy = fromProto.spans.find((s) => s.name === "/shop.Shop/Buy")!;
    const sdk = spans.find((s) => s.name === "/stock.Stock/Reserve")!;
    expect(reserve).to.deep.include({ traceId: sdk.spanContext().traceId, spanId: sdk.spanContext().spanId, parentSpanId: buy.spanId, service: "checkout", kind: "client", status: "error", statusMessage: "stock service unavailable" });
    expect(reserve.startUs).to.equal(sdk.startTime[0] * 1e6 + Math.floor(sdk.startTime[1] / 1000));
    expect(reserve.attributes).to.deep.equal({
      "rpc.system": "grpc",
      "rpc.grpc.status_code": 14,
      "retry.backoff": 2.5,
      "cache.hit": false,
      tags: '["x","y"]',
      sizes: "[1,2]",
      flags: "[true]",
      "payload.bytes": "AAH+/w==",
      "peer.labels": '{"zone":"eu-1","weight":3,"tags":["a",{"deep":true}]}',
    });
    expect(buy).to.deep.include({ kind: "server", status: "ok" });
    expect(buy.parentSpanId).to.equal(undefined);
  });

  it("refuses bytes that are not an export with a message naming what was expected", () => {
    expect(() => decodeOtlpProtobuf(Buffer.from("x"))).to.throw(/not a protobuf ExportTraceServiceRequest/);
    expect(() => decodeOtlpProtobuf(proto.subarray(0, proto.length - 5))).to.throw(/not a protobuf ExportTraceServiceRequest/);
    // Any bytes at all: spans or that error, never another kind of failure.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          return Array.isArray(decodeOtlpProtobuf(bytes).spans);
        } catch (err) {
          return /not a protobuf ExportTraceServiceRequest/.test((err as Error).message);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("skips and counts a span with a malformed id, keeping the rest of the export", () => {
    const good = Span.fromPartial({ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: "ok", startTimeUnixNano: "1000000", endTimeUnixNano: "2000000" });
    const bad = Span.fromPartial({ ...good, spanId: Buffer.alloc(3, 2), name: "short id" });
    const body = ExportTraceServiceRequest.encode({ resourceSpans: [{ resource: undefined, schemaUrl: "", scopeSpans: [{ scope: undefined, schemaUrl: "", spans: [good, bad] }] }] }).finish();
    const decoded = decodeOtlpProtobuf(body);
    expect(decoded.rejected).to.equal(1);
    expect(decoded.spans.map((s) => [s.name, s.traceId, s.spanId, s.startUs, s.service])).to.deep.equal([["ok", "01".repeat(16), "02".repeat(8), 1000, "unknown"]]);
  });

  it("answers in bytes the SDK's own reader understands: empty on success, partial_success naming what was skipped", () => {
    expect(encodeOtlpResponse(0, "")).to.have.length(0);
    expect(ProtobufTraceSerializer.deserializeResponse(encodeOtlpResponse(2, "2 malformed spans skipped"))).to.deep.equal({ partialSuccess: { rejectedSpans: 2, errorMessage: "2 malformed spans skipped" } });
    const status = encodeRpcStatus(3, "not a protobuf ExportTraceServiceRequest");
    expect(Buffer.from(status).toString("utf8")).to.include("not a protobuf ExportTraceServiceRequest");
    expect(status[0]).to.equal(0x08); // field 1 (code), varint
    expect(status[1]).to.equal(3);
  });
});
