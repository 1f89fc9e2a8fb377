/**
 * Local stand-ins for a Jaeger agent (Thrift over UDP) and an OTLP/HTTP receiver. Both
 * decode what exporters send into the same plain span records, so a test can check
 * that spans really left the exporting processes and say the same thing either way.
 */
import * as dgram from "node:dgram";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** A span as either receiver decodes it. Times are microseconds since the epoch. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: string;
  startUs: number;
  endUs: number;
  attributes: Record<string, string | number | boolean>;
}

export interface Receiver {
  readonly spans: ReceivedSpan[];
  /** `host:port` for UDP, a base URL for HTTP. */
  readonly endpoint: string;
  /** Resolves once at least `count` spans arrived (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

function collector(): { spans: ReceivedSpan[]; add(list: ReceivedSpan[]): void; waitFor(count: number, timeoutMs?: number): Promise<ReceivedSpan[]> } {
  const spans: ReceivedSpan[] = [];
  const waiters: Array<() => void> = [];
  return {
    spans,
    add(list) {
      spans.push(...list);
      for (const w of waiters.splice(0)) w();
    },
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`received ${spans.length} spans, expected ${count}`)), timeoutMs);
        const check = () => {
          if (spans.length >= count) {
            clearTimeout(timer);
            resolve(spans);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

// ---- Jaeger agent: Thrift binary protocol, Agent.emitBatch(Batch) ----

/** A decoded Thrift value: structs become maps from field id to value. */
type ThriftValue = boolean | number | bigint | Buffer | ThriftStruct | ThriftValue[];
type ThriftStruct = Map<number, ThriftValue>;

const T = { STOP: 0, BOOL: 2, BYTE: 3, DOUBLE: 4, I16: 6, I32: 8, I64: 10, STRING: 11, STRUCT: 12, MAP: 13, SET: 14, LIST: 15 } as const;

class BinaryReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  message(): { name: string; args: ThriftStruct } {
    const first = this.buf.readInt32BE(this.offset);
    let name: string;
    if (first < 0) {
      // Strict envelope: version | type, name, seqid.
      if ((first & 0xffff0000) !== (0x80010000 | 0)) throw new Error(`unsupported Thrift version ${first.toString(16)}`);
      this.offset += 4;
      name = this.string();
      this.offset += 4;
    } else {
      name = this.string();
      this.offset += 1 + 4;
    }
    return { name, args: this.struct() };
  }

  private value(type: number): ThriftValue {
    const b = this.buf;
    switch (type) {
      case T.BOOL:
        return b.readUInt8(this.offset++) !== 0;
      case T.BYTE:
        return b.readInt8(this.offset++);
      case T.DOUBLE:
        this.offset += 8;
        return b.readDoubleBE(this.offset - 8);
      case T.I16:
        this.offset += 2;
        return b.readInt16BE(this.offset - 2);
      case T.I32:
        this.offset += 4;
        return b.readInt32BE(this.offset - 4);
      case T.I64:
        this.offset += 8;
        return b.readBigInt64BE(this.offset - 8);
      case T.STRING: {
        const len = b.readInt32BE(this.offset);
        this.offset += 4 + len;
        return b.subarray(this.offset - len, this.offset);
      }
      case T.STRUCT:
        return this.struct();
      case T.LIST:
      case T.SET: {
        const elem = b.readUInt8(this.offset);
        const size = b.readInt32BE(this.offset + 1);
        this.offset += 5;
        return Array.from({ length: size }, () => this.value(elem));
      }
      case T.MAP: {
        const k = b.readUInt8(this.offset);
        const v = b.readUInt8(this.offset + 1);
        const size = b.readInt32BE(this.offset + 2);
        this.offset += 6;
        const out: ThriftValue[] = [];
        for (let i = 0; i < size; i++) out.push([this.value(k), this.value(v)]);
        return out;
      }
      default:
        throw new Error(`unknown Thrift type ${type} at ${this.offset}`);
    }
  }

  private struct(): ThriftStruct {
    const fields: ThriftStruct = new Map();
    for (;;) {
      const type = this.buf.readUInt8(this.offset++);
      if (type === T.STOP) return fields;
      const id = this.buf.readInt16BE(this.offset);
      this.offset += 2;
      fields.set(id, this.value(type));
    }
  }

  private string(): string {
    return (this.value(T.STRING) as Buffer).toString("utf8");
  }
}

const str = (v: ThriftValue | undefined) => (Buffer.isBuffer(v) ? v.toString("utf8") : "");
const hex64 = (v: ThriftValue | undefined) => BigInt.asUintN(64, typeof v === "bigint" ? v : 0n).toString(16).padStart(16, "0");

/** jaeger.thrift Tag: key(1), vType(2), vStr(3), vDouble(4), vBool(5), vLong(6). */
function tagValue(tag: ThriftStruct): string | number | boolean {
  switch (tag.get(2)) {
    case 0:
      return str(tag.get(3));
    case 1:
      return tag.get(4) as number;
    case 2:
      return tag.get(5) as boolean;
    case 3:
      return Number(tag.get(6) as bigint);
    default:
      return str(tag.get(7));
  }
}

/** Decodes one UDP datagram: Agent.emitBatch(1: Batch{1: Process, 2: list<Span>}). */
export function decodeJaegerDatagram(datagram: Buffer): ReceivedSpan[] {
  const { name, args } = new BinaryReader(datagram).message();
  if (name !== "emitBatch") throw new Error(`unexpected Jaeger agent call ${name}`);
  const batch = args.get(1) as ThriftStruct;
  const process = batch.get(1) as ThriftStruct;
  const service = str(process.get(1));
  return (batch.get(2) as ThriftStruct[]).map((span) => {
    const attributes: Record<string, string | number | boolean> = {};
    for (const tag of (span.get(10) as ThriftStruct[] | undefined) ?? []) attributes[str(tag.get(1))] = tagValue(tag);
    const parent = hex64(span.get(4));
    const startUs = Number(span.get(8) as bigint);
    return {
      service,
      traceId: hex64(span.get(2)) + hex64(span.get(1)),
      spanId: hex64(span.get(3)),
      parentSpanId: parent === "0000000000000000" ? undefined : parent,
      name: str(span.get(5)),
      kind: String(attributes["span.kind"] ?? "internal"),
      startUs,
      endUs: startUs + Number(span.get(9) as bigint),
      attributes,
    };
  });
}

/** A UDP socket that takes what a Jaeger exporter sends to an agent. */
export async function startJaegerAgent(): Promise<Receiver> {
  const sink = collector();
  const socket = dgram.createSocket("udp4");
  socket.on("message", (msg) => sink.add(decodeJaegerDatagram(msg)));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  return {
    spans: sink.spans,
    endpoint: `127.0.0.1:${port}`,
    waitFor: sink.waitFor,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

// ---- OTLP/HTTP with JSON bodies ----

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: OtlpKeyValue[];
}
interface OtlpRequest {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];

function anyValue(v: OtlpAnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return "";
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** Nanoseconds (as a decimal string) to whole microseconds, the Jaeger resolution. */
const nanosToUs = (n: string | number) => Number(BigInt(String(n)) / 1000n);

/** Decodes an `ExportTraceServiceRequest` in OTLP's JSON encoding (ids in hex). */
export function decodeOtlpJson(body: OtlpRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        out.push({
          service: String(resource["service.name"] ?? ""),
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId || undefined,
          name: span.name,
          kind: KINDS[span.kind] ?? "unspecified",
          startUs: nanosToUs(span.startTimeUnixNano),
          endUs: nanosToUs(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes),
        });
      }
    }
  }
  return out;
}

/** An HTTP server that accepts OTLP/HTTP JSON trace exports at `/v1/traces`. */
export async function startOtlpReceiver(): Promise<Receiver & { readonly contentTypes: string[] }> {
  const sink = collector();
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(String(req.headers["content-type"]));
      try {
        sink.add(decodeOtlpJson(JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    spans: sink.spans,
    contentTypes,
    endpoint: `http://127.0.0.1:${port}`,
    waitFor: sink.waitFor,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
