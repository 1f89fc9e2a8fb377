import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { createJsonLogger, type Server } from "protomesh";
import { setupTracing, type TracingHandle } from "protomesh/tracing";
import type { Gateway } from "../gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { startGateway, startHttpGreeter } from "./helpers/gateway";
import { waitFor } from "./helpers/wait";

describe("gateway tracing: request span → upstream client span → greeter server span", function () {
  this.timeout(60_000);
  const etcd = useEmbeddedEtcd();
  let exporter: InMemorySpanExporter;
  let stop: TracingHandle;
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };

  before(async () => {
    exporter = new InMemorySpanExporter();
    stop = setupTracing({ serviceName: "gateway-tracing-test", exporter, exportDelayMs: 1 });
    greeter = await startHttpGreeter();
    gw = await startGateway(greeter.address, { etcd: { endpoints: etcd.endpoints, namespace: uniqueNamespace() }, env: "test", logger: createJsonLogger({ level: "silent" }) });
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
    await stop?.();
  });
  beforeEach(() => exporter.reset());

  /** The three spans of one request, once all have ended. */
  async function chain(): Promise<{ request: ReadableSpan; upstream: ReadableSpan; served: ReadableSpan }> {
    await waitFor(() => exporter.getFinishedSpans().length >= 3, { timeoutMs: 10_000, what: "three finished spans" });
    const all = exporter.getFinishedSpans();
    const request = all.find((s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === "protomesh.gateway");
    const upstream = all.find((s) => s.kind === SpanKind.CLIENT);
    const served = all.find((s) => s.kind === SpanKind.SERVER && s !== request);
    expect(request, "gateway request span").to.exist;
    expect(upstream, "upstream client span").to.exist;
    expect(served, "greeter server span").to.exist;
    return { request: request!, upstream: upstream!, served: served! };
  }

  it("makes one trace: the gateway's SERVER span parents the upstream CLIENT span, which parents the greeter's SERVER span", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(200);
    const { request, upstream, served } = await chain();
    expect(request.name).to.equal("GET /v1/hello/{name}");
    expect(request.attributes).to.include({ "http.request.method": "GET", "http.route": "/v1/hello/{name}", "http.response.status_code": 200 });
    expect(request.parentSpanContext?.spanId, "a new trace starts at the gateway").to.equal(undefined);
    expect(upstream.name).to.equal("examples.gateway.v1.HttpGreeter/SayHello");
    expect(upstream.attributes).to.include({ "rpc.system": "grpc", "rpc.service": "examples.gateway.v1.HttpGreeter", "rpc.method": "SayHello", "rpc.grpc.status_code": 0 });
    const traceId = request.spanContext().traceId;
    expect(upstream.spanContext().traceId).to.equal(traceId);
    expect(served.spanContext().traceId).to.equal(traceId);
    expect(upstream.parentSpanContext?.spanId).to.equal(request.spanContext().spanId);
    expect(served.parentSpanContext?.spanId).to.equal(upstream.spanContext().spanId);
  });

  it("continues an incoming traceparent", async () => {
    const traceId = randomBytes(16).toString("hex");
    const parentId = randomBytes(8).toString("hex");
    const res = await fetch(`${gw.url}/v1/hello/Ada`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    expect(res.status).to.equal(200);
    const { request, upstream, served } = await chain();
    for (const s of [request, upstream, served]) expect(s.spanContext().traceId).to.equal(traceId);
    expect(request.parentSpanContext?.spanId).to.equal(parentId);
    expect(upstream.parentSpanContext?.spanId).to.equal(request.spanContext().spanId);
    expect(served.parentSpanContext?.spanId).to.equal(upstream.spanContext().spanId);
  });

  it("marks an upstream failure on both the client span and the request span", async () => {
    const res = await fetch(`${gw.url}/v1/hello/nobody`);
    expect(res.status).to.equal(404);
    const { request, upstream } = await chain();
    expect(upstream.attributes["rpc.grpc.status_code"]).to.equal(5);
    expect(request.attributes["http.response.status_code"]).to.equal(404);
  });
});
