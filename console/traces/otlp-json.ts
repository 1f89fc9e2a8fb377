/**
 * Decodes an OTLP/HTTP JSON trace export (`ExportTraceServiceRequest`, what
 * protomesh's tracing sends) into spans. Defensive: a malformed span is
 * skipped and counted, never a crash; ids must be hex as the OTLP JSON
 * encoding says.
 */
import type { TraceSpan } from "./span";

const KINDS: TraceSpan["kind"][] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const HEX = /^[0-9a-f]+$/i;

export function decodeOtlpJson(body: unknown): { spans: TraceSpan[]; rejected: number } {
  const spans: TraceSpan[] = [];
  let rejected = 0;
  const resourceSpans = field(body, "resourceSpans");
  if (!Array.isArray(resourceSpans)) throw new Error('expected {"resourceSpans": [...]}');
  for (const rs of resourceSpans) {
    const resourceAttrs = attributes(field(field(rs, "resource"), "attributes"));
    const service = String(resourceAttrs["service.name"] ?? "unknown");
    const scopes = field(rs, "scopeSpans") ?? field(rs, "instrumentationLibrarySpans");
    if (!Array.isArray(scopes)) continue;
    for (const scope of scopes) {
      const list = field(scope, "spans");
      if (!Array.isArray(list)) continue;
      for (const s of list) {
        const span = decodeSpan(s, service);
        if (span) spans.push(span);
        else rejected++;
      }
    }
  }
  return { spans, rejected };
}

function decodeSpan(s: unknown, service: string): TraceSpan | undefined {
  const traceId = field(s, "traceId");
  const spanId = field(s, "spanId");
  const parent = field(s, "parentSpanId");
  if (typeof traceId !== "string" || traceId.length !== 32 || !HEX.test(traceId)) return undefined;
  if (typeof spanId !== "string" || spanId.length !== 16 || !HEX.test(spanId)) return undefined;
  const startUs = nanosToMicros(field(s, "startTimeUnixNano"));
  const endUs = nanosToMicros(field(s, "endTimeUnixNano"));
  if (startUs === undefined || endUs === undefined) return undefined;
  const kind = field(s, "kind");
  const status = field(s, "status");
  const code = field(status, "code");
  const name = field(s, "name");
  return {
    traceId: traceId.toLowerCase(),
    spanId: spanId.toLowerCase(),
    ...(typeof parent === "string" && parent.length === 16 && HEX.test(parent) && parent !== "0000000000000000" ? { parentSpanId: parent.toLowerCase() } : {}),
    service,
    name: typeof name === "string" ? name.slice(0, 500) : "",
    kind: KINDS[typeof kind === "number" ? kind : 0] ?? "unspecified",
    startUs,
    endUs: Math.max(endUs, startUs),
    status: code === 2 || code === "STATUS_CODE_ERROR" ? "error" : code === 1 || code === "STATUS_CODE_OK" ? "ok" : "unset",
    statusMessage: typeof field(status, "message") === "string" ? (field(status, "message") as string).slice(0, 2000) : "",
    attributes: attributes(field(s, "attributes")),
  };
}

function attributes(list: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (!Array.isArray(list)) return out;
  for (const a of list.slice(0, 128)) {
    const key = field(a, "key");
    if (typeof key !== "string") continue;
    const value = attributeValue(field(a, "value"));
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * A scalar stays as it is; an array, a key-value list or bytes becomes text the
 * way Jaeger shows them (JSON for the first two, base64 for bytes), so no kind
 * of attribute value is dropped.
 */
function attributeValue(v: unknown): string | number | boolean | undefined {
  const str = field(v, "stringValue");
  const int = field(v, "intValue");
  const dbl = field(v, "doubleValue");
  const bool = field(v, "boolValue");
  const bytes = field(v, "bytesValue");
  if (typeof str === "string") return str.slice(0, 1000);
  if (typeof int === "string" || typeof int === "number") return Number(int);
  if (typeof dbl === "number") return dbl;
  if (typeof bool === "boolean") return bool;
  if (typeof bytes === "string") return bytes.slice(0, 1000);
  if (field(v, "arrayValue") !== undefined || field(v, "kvlistValue") !== undefined) {
    const plain = plainValue(v, 0);
    return plain === undefined ? undefined : JSON.stringify(plain).slice(0, 1000);
  }
  return undefined;
}

type Plain = string | number | boolean | null | Plain[] | { [key: string]: Plain };

/** An AnyValue as plain JSON data, at most 8 levels deep (deeper parts become null). */
function plainValue(v: unknown, depth: number): Plain | undefined {
  if (depth > 8) return null;
  const array = field(v, "arrayValue");
  if (array !== undefined) return listOf(field(array, "values")).map((x) => plainValue(x, depth + 1) ?? null);
  const kvlist = field(v, "kvlistValue");
  if (kvlist !== undefined) {
    const out: { [key: string]: Plain } = {};
    for (const kv of listOf(field(kvlist, "values"))) {
      const key = field(kv, "key");
      if (typeof key === "string") out[key] = plainValue(field(kv, "value"), depth + 1) ?? null;
    }
    return out;
  }
  return attributeValue(v);
}

/** An OTLP JSON list, which the encoding may leave out when empty. */
function listOf(x: unknown): unknown[] {
  return Array.isArray(x) ? x.slice(0, 128) : [];
}

function nanosToMicros(x: unknown): number | undefined {
  try {
    if (typeof x === "string" && /^\d+$/.test(x)) return Number(BigInt(x) / 1000n);
    if (typeof x === "number" && Number.isFinite(x)) return Math.floor(x / 1000);
  } catch {
    // falls through
  }
  return undefined;
}

function field(x: unknown, name: string): unknown {
  return typeof x === "object" && x !== null ? (x as Record<string, unknown>)[name] : undefined;
}
