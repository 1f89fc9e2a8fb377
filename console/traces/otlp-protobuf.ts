/**
 * OTLP/HTTP with protobuf bodies, the encoding OpenTelemetry exporters and the
 * Collector send by default. A request is decoded with the code generated from
 * proto/protomesh/console/v1/otlp_trace.proto, turned into the object the OTLP
 * JSON encoding gives for the same export, and read by the JSON path's decoder:
 * one mapping to spans, so both encodings give the same spans by construction.
 */
import {
  ExportTraceServiceRequest,
  ExportTraceServiceResponse,
  RpcStatus,
  type AnyValue,
  type InstrumentationScope,
  type KeyValue,
  type Resource,
  type Span,
} from "../../gen/protomesh/console/v1/otlp_trace";
import { decodeOtlpJson } from "./otlp-json";
import type { TraceSpan } from "./span";

/** The OTLP JSON encoding of one attribute value (ids hex, 64-bit integers as decimal strings, bytes base64). */
export type OtlpJsonValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { bytesValue: string }
  | { arrayValue: { values: OtlpJsonValue[] } }
  | { kvlistValue: { values: OtlpJsonKeyValue[] } }
  | Record<string, never>;
export interface OtlpJsonKeyValue {
  key: string;
  value: OtlpJsonValue;
}

/** Decodes a protobuf `ExportTraceServiceRequest` into spans; throws on bytes that are not one. */
export function decodeOtlpProtobuf(body: Uint8Array): { spans: TraceSpan[]; rejected: number } {
  return decodeOtlpJson(otlpProtobufToJson(body));
}

/**
 * The OTLP JSON form of a protobuf export (what `JSON.parse` of the same export
 * sent as JSON gives, defaults left out). Throws a readable error on bytes that
 * are not a protobuf message: truncated, a bad wire type, nesting past 100 levels.
 */
export function otlpProtobufToJson(body: Uint8Array): { resourceSpans: Record<string, unknown>[] } {
  let request: ExportTraceServiceRequest;
  try {
    request = ExportTraceServiceRequest.decode(body);
  } catch (err) {
    // The wire reader's messages are terse ("premature EOF", "invalid wire type 7").
    throw new Error(`the body is not a protobuf ExportTraceServiceRequest (${(err as Error).message})`);
  }
  return {
    resourceSpans: request.resourceSpans.map((rs) => ({
      ...(rs.resource ? { resource: resourceJson(rs.resource) } : {}),
      scopeSpans: rs.scopeSpans.map((ss) => ({
        ...(ss.scope ? { scope: scopeJson(ss.scope) } : {}),
        spans: ss.spans.map(spanJson),
        ...(ss.schemaUrl ? { schemaUrl: ss.schemaUrl } : {}),
      })),
      ...(rs.schemaUrl ? { schemaUrl: rs.schemaUrl } : {}),
    })),
  };
}

/** The protobuf answer to an export: empty on full success, or naming what was refused. */
export function encodeOtlpResponse(rejected: number, errorMessage: string): Uint8Array {
  const response: ExportTraceServiceResponse = { partialSuccess: rejected > 0 || errorMessage ? { rejectedSpans: String(rejected), errorMessage } : undefined };
  return ExportTraceServiceResponse.encode(response).finish();
}

/** OTLP/HTTP's error body for protobuf requests: a `google.rpc.Status` (code and message). */
export function encodeRpcStatus(code: number, message: string): Uint8Array {
  return RpcStatus.encode({ code, message }).finish();
}

// Objects are filled field by field rather than spread together: this runs once per span
// and attribute, and spreading short-lived objects costs more than the decoding itself.
function spanJson(s: Span): Record<string, unknown> {
  const out: Record<string, unknown> = { traceId: hex(s.traceId), spanId: hex(s.spanId) };
  if (s.traceState) out.traceState = s.traceState;
  if (s.parentSpanId.length) out.parentSpanId = hex(s.parentSpanId);
  if (s.flags) out.flags = s.flags;
  out.name = s.name;
  out.kind = s.kind;
  out.startTimeUnixNano = s.startTimeUnixNano;
  out.endTimeUnixNano = s.endTimeUnixNano;
  out.attributes = attributesJson(s.attributes);
  if (s.droppedAttributesCount) out.droppedAttributesCount = s.droppedAttributesCount;
  out.events = s.events.map((e) => {
    const event: Record<string, unknown> = { timeUnixNano: e.timeUnixNano, name: e.name, attributes: attributesJson(e.attributes) };
    if (e.droppedAttributesCount) event.droppedAttributesCount = e.droppedAttributesCount;
    return event;
  });
  if (s.droppedEventsCount) out.droppedEventsCount = s.droppedEventsCount;
  out.links = s.links.map((l) => {
    const link: Record<string, unknown> = { traceId: hex(l.traceId), spanId: hex(l.spanId) };
    if (l.traceState) link.traceState = l.traceState;
    link.attributes = attributesJson(l.attributes);
    if (l.droppedAttributesCount) link.droppedAttributesCount = l.droppedAttributesCount;
    if (l.flags) link.flags = l.flags;
    return link;
  });
  if (s.droppedLinksCount) out.droppedLinksCount = s.droppedLinksCount;
  const status: Record<string, unknown> = { code: s.status?.code ?? 0 };
  if (s.status?.message) status.message = s.status.message;
  out.status = status;
  return out;
}

function resourceJson(r: Resource): Record<string, unknown> {
  return { attributes: attributesJson(r.attributes), ...(r.droppedAttributesCount ? { droppedAttributesCount: r.droppedAttributesCount } : {}) };
}

function scopeJson(s: InstrumentationScope): Record<string, unknown> {
  return {
    name: s.name,
    ...(s.version ? { version: s.version } : {}),
    ...(s.attributes.length ? { attributes: attributesJson(s.attributes) } : {}),
    ...(s.droppedAttributesCount ? { droppedAttributesCount: s.droppedAttributesCount } : {}),
  };
}

function attributesJson(list: readonly KeyValue[]): OtlpJsonKeyValue[] {
  return list.map((kv) => ({ key: kv.key, value: valueJson(kv.value) }));
}

function valueJson(v: AnyValue | undefined): OtlpJsonValue {
  if (!v) return {};
  if (v.stringValue !== undefined) return { stringValue: v.stringValue };
  if (v.boolValue !== undefined) return { boolValue: v.boolValue };
  if (v.intValue !== undefined) return { intValue: v.intValue };
  if (v.doubleValue !== undefined) return { doubleValue: v.doubleValue };
  if (v.bytesValue !== undefined) return { bytesValue: Buffer.from(v.bytesValue).toString("base64") };
  if (v.arrayValue !== undefined) return { arrayValue: { values: v.arrayValue.values.map(valueJson) } };
  if (v.kvlistValue !== undefined) return { kvlistValue: { values: attributesJson(v.kvlistValue.values) } };
  return {};
}

function hex(id: Buffer): string {
  return id.toString("hex");
}
