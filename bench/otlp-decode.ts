/**
 * The console's OTLP/HTTP receiver: CPU time to decode one trace export, protobuf
 * against JSON, for the same spans written by the OpenTelemetry SDK's own
 * serializers (the bytes its exporters send). Also the body sizes, plain and gzip.
 * `node bin/run.js bench/otlp-decode.ts [--spans N] [--rounds N] [--runs N]`.
 *
 * Each run decodes the export `rounds` times and takes the process's CPU time
 * (user + system) per export; the two encodings alternate run by run so drift on
 * a loaded machine hits both alike. Medians of the runs are printed.
 */
import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { gzipSync } from "node:zlib";
import { decodeOtlpJson } from "../console/traces/otlp-json";
import { decodeOtlpProtobuf } from "../console/traces/otlp-protobuf";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SPANS = arg("spans", 1000);
const ROUNDS = arg("rounds", 50);
const RUNS = arg("runs", 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Spans shaped like a gRPC fleet's: server and client spans with the usual rpc.* attributes, some failing. */
function makeSpans(n: number): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes({ "service.name": "bench", "service.version": "1.0.0", "host.name": "node-1" }), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer("protomesh", "0.1.0");
  for (let i = 0; i < n; i += 2) {
    const server = tracer.startSpan("/shop.v1.Shop/Buy", { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": "shop.v1.Shop", "rpc.method": "Buy", "server.port": 50051, "rpc.grpc.status_code": 0 } });
    const client = tracer.startSpan(
      "/stock.v1.Stock/Reserve",
      { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": "stock.v1.Stock", "rpc.method": "Reserve", "server.address": "10.0.0.7", "server.port": 50052, "rpc.grpc.status_code": i % 10 === 0 ? 14 : 0 } },
      trace.setSpan(context.active(), server),
    );
    if (i % 10 === 0) {
      client.addEvent("exception", { "exception.type": "UNAVAILABLE", "exception.message": "connection refused" });
      client.setStatus({ code: SpanStatusCode.ERROR, message: "stock service unavailable" });
    }
    client.end();
    server.end();
  }
  return exporter.getFinishedSpans();
}

function cpuMsPerExport(decode: () => unknown): number {
  const before = process.cpuUsage();
  for (let r = 0; r < ROUNDS; r++) decode();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / ROUNDS;
}

function main(): void {
  const spans = makeSpans(SPANS);
  const json = Buffer.from(JsonTraceSerializer.serializeRequest(spans)!);
  const proto = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
  const viaJson = () => decodeOtlpJson(JSON.parse(json.toString("utf8")));
  const viaProto = () => decodeOtlpProtobuf(proto);
  if (viaJson().spans.length !== spans.length || viaProto().spans.length !== spans.length) throw new Error("an encoding lost spans");
  for (let w = 0; w < 5; w++) viaJson(), viaProto(); // warm the JIT
  const jsonMs: number[] = [];
  const protoMs: number[] = [];
  const ratios: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const first = run % 2 === 0 ? cpuMsPerExport(viaProto) : cpuMsPerExport(viaJson);
    const second = run % 2 === 0 ? cpuMsPerExport(viaJson) : cpuMsPerExport(viaProto);
    const [p, j] = run % 2 === 0 ? [first, second] : [second, first];
    protoMs.push(p);
    jsonMs.push(j);
    ratios.push(p / j);
  }
  const row = (name: string, body: Buffer, ms: number[]) =>
    `| ${name} | ${body.length.toLocaleString("en")} B | ${gzipSync(body).length.toLocaleString("en")} B | ${median(ms).toFixed(2)} ms | ${((median(ms) * 1000) / spans.length).toFixed(2)} µs |`;
  console.log(`OTLP trace export of ${spans.length} spans, ${ROUNDS} decodes per run, median of ${RUNS} runs (CPU time)\n`);
  console.log("| encoding | body | gzip body | CPU per export | per span |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(row("protobuf (application/x-protobuf)", proto, protoMs));
  console.log(row("JSON (application/json)", json, jsonMs));
  console.log(`\nprotobuf / JSON CPU, median of per-run ratios: ${median(ratios).toFixed(2)}`);
}

main();
