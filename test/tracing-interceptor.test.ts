import { expect } from "chai";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { RpcError, Status, isTracingEnabled, tracingInterceptor, getLogger, setLogger, createJsonLogger, type Server, type Logger } from "protomesh";
import { setupTracing, type TracingHandle } from "protomesh/tracing";
import { startGreeter, greeterClient, collect } from "./helpers/greeter";

describe("tracing: spans from the interceptors (in process)", () => {
  let exporter: InMemorySpanExporter;
  let stop: TracingHandle;
  let server: Server;
  let client: ReturnType<typeof greeterClient>;
  let logger: Logger;

  before(async () => {
    // The INTERNAL case logs the handler's crash; keep the test output clean.
    logger = getLogger();
    setLogger(createJsonLogger({ level: "silent" }));
    exporter = new InMemorySpanExporter();
    stop = setupTracing({ serviceName: "tracing-test", exporter, exportDelayMs: 1 });
    const started = await startGreeter({
      async sayHello(req) {
        if (req.name === "missing") throw new RpcError(Status.NOT_FOUND, "no such person");
        if (req.name === "boom") throw new Error("handler exploded");
        return { message: `hi ${req.name}` };
      },
    });
    server = started.server;
    client = greeterClient(started.address);
  });
  after(async () => {
    client.$close();
    await server.shutdown({ graceMs: 100 });
    await stop();
    setLogger(logger);
  });
  beforeEach(() => exporter.reset());

  /** Waits until `count` spans have ended (the server span of a stream can end just after the client's). */
  async function spans(count: number): Promise<ReadableSpan[]> {
    for (let i = 0; i < 200 && exporter.getFinishedSpans().length < count; i++) await new Promise((r) => setTimeout(r, 5));
    return exporter.getFinishedSpans();
  }

  function pair(all: ReadableSpan[]): { client: ReadableSpan; server: ReadableSpan } {
    const c = all.find((s) => s.kind === SpanKind.CLIENT);
    const s = all.find((x) => x.kind === SpanKind.SERVER);
    expect(c, "client span").to.exist;
    expect(s, "server span").to.exist;
    return { client: c!, server: s! };
  }

  it("makes a client and a server span of one trace for a unary call, with the RPC attributes", async () => {
    await client.sayHello({ name: "a" });
    const { client: c, server: s } = pair(await spans(2));
    expect(c.name).to.equal("examples.greeter.v1.Greeter/SayHello");
    expect(s.name).to.equal(c.name);
    expect(s.spanContext().traceId).to.equal(c.spanContext().traceId);
    expect(s.parentSpanContext?.spanId).to.equal(c.spanContext().spanId);
    expect(c.attributes).to.include({ "rpc.system": "grpc", "rpc.service": "examples.greeter.v1.Greeter", "rpc.method": "SayHello", "rpc.grpc.status_code": 0, "server.address": "127.0.0.1" });
    expect(c.attributes["server.port"]).to.be.a("number");
    expect(s.attributes).to.include({ "rpc.system": "grpc", "rpc.grpc.status_code": 0, "network.peer.address": "127.0.0.1" });
    expect(s.resource.attributes["service.name"]).to.equal("tracing-test");
  });

  it("ends a server-streaming span when the stream ends, not when it starts", async () => {
    const replies = await collect(client.streamHellos({ name: "s", count: 3, intervalMs: 30 }));
    expect(replies).to.have.length(3);
    const { client: c, server: s } = pair(await spans(2));
    const ms = (span: ReadableSpan) => span.duration[0] * 1e3 + span.duration[1] / 1e6;
    expect(ms(c)).to.be.at.least(55);
    expect(ms(s)).to.be.at.least(55);
    expect(s.parentSpanContext?.spanId).to.equal(c.spanContext().spanId);
  });

  it("traces client-streaming and bidi calls too", async () => {
    await client.collectHellos([{ name: "x" }, { name: "y" }]);
    const names = [];
    for await (const r of client.chat([{ name: "p" }, { name: "q" }])) names.push(r.message);
    expect(names).to.have.length(2);
    const all = await spans(4);
    expect(all.map((s) => `${s.kind === SpanKind.CLIENT ? "client" : "server"} ${s.name}`).sort()).to.deep.equal([
      "client examples.greeter.v1.Greeter/Chat",
      "client examples.greeter.v1.Greeter/CollectHellos",
      "server examples.greeter.v1.Greeter/Chat",
      "server examples.greeter.v1.Greeter/CollectHellos",
    ]);
    for (const s of all) expect(s.attributes["rpc.grpc.status_code"]).to.equal(0);
  });

  it("records errors: a caller's mistake fails only the client span, a crash fails both", async () => {
    await client.sayHello({ name: "missing" }).catch(() => undefined);
    let { client: c, server: s } = pair(await spans(2));
    expect(c.attributes["rpc.grpc.status_code"]).to.equal(Status.NOT_FOUND);
    expect(c.status.code).to.equal(SpanStatusCode.ERROR);
    expect(c.events.map((e) => e.name)).to.include("exception");
    expect(s.attributes["rpc.grpc.status_code"]).to.equal(Status.NOT_FOUND);
    expect(s.status.code).to.equal(SpanStatusCode.UNSET);

    exporter.reset();
    await client.sayHello({ name: "boom" }).catch(() => undefined);
    ({ client: c, server: s } = pair(await spans(2)));
    expect(s.attributes["rpc.grpc.status_code"]).to.equal(Status.INTERNAL);
    expect(s.status.code).to.equal(SpanStatusCode.ERROR);
    const exception = s.events.find((e) => e.name === "exception");
    expect(exception?.attributes?.["exception.message"]).to.equal("handler exploded");
  });

  it("marks a stream the client abandons as CANCELLED on both sides", async () => {
    for await (const _ of client.streamHellos({ name: "c", count: 50, intervalMs: 5 })) break;
    const { client: c, server: s } = pair(await spans(2));
    expect(c.attributes["rpc.grpc.status_code"]).to.equal(Status.CANCELLED);
    expect(s.attributes["rpc.grpc.status_code"]).to.equal(Status.CANCELLED);
  });

  it("continues the caller's trace: a call made inside an active span becomes its child", async () => {
    await trace.getTracer("test").startActiveSpan("business-operation", async (span) => {
      await client.sayHello({ name: "nested" });
      span.end();
    });
    const all = await spans(3);
    const op = all.find((s) => s.name === "business-operation")!;
    expect(op.parentSpanContext).to.equal(undefined);
    const { client: c } = pair(all);
    expect(c.parentSpanContext?.spanId).to.equal(op.spanContext().spanId);
    expect(c.spanContext().traceId).to.equal(op.spanContext().traceId);
  });

  it("sends the W3C traceparent header in the metadata", async () => {
    const seen: string[] = [];
    const { server: other, address } = await startGreeter({
      async sayHello(_req, ctx) {
        seen.push(String(ctx.metadata.get("traceparent")[0] ?? ""));
        return { message: "ok" };
      },
    }, { tracing: false });
    const c2 = greeterClient(address);
    await c2.sayHello({ name: "h" });
    c2.$close();
    await other.shutdown({ graceMs: 100 });
    const [clientSpan] = await spans(1);
    expect(seen[0]).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(seen[0]).to.equal(`00-${clientSpan!.spanContext().traceId}-${clientSpan!.spanContext().spanId}-01`);
  });

  it("makes no spans for a client or server with tracing: false", async () => {
    const { server: quiet, address } = await startGreeter({}, { tracing: false });
    const c2 = greeterClient(address, { tracing: false });
    await c2.sayHello({ name: "q" });
    c2.$close();
    await quiet.shutdown({ graceMs: 100 });
    expect(exporter.getFinishedSpans()).to.have.length(0);
  });
});

describe("tracing: off by default", () => {
  it("leaves tracing off until setupTracing runs, and off again after its shutdown", async () => {
    expect(isTracingEnabled()).to.equal(false);
    const exporter = new InMemorySpanExporter();
    const stop = setupTracing({ exporter: [exporter] });
    expect(isTracingEnabled()).to.equal(true);
    await stop();
    expect(isTracingEnabled()).to.equal(false);
    const { server, address } = await startGreeter();
    const client = greeterClient(address);
    await client.sayHello({ name: "after" });
    client.$close();
    await server.shutdown({ graceMs: 100 });
    expect(exporter.getFinishedSpans()).to.have.length(0);
  });
});

describe("tracing: without a registered context manager", () => {
  /**
   * Upstream → downstream with a traced interceptor and no context manager: runs one call
   * through `upstream` (its handler calls `down`) and returns the server span and the client
   * spans in start order.
   */
  async function tracedChain(
    upstream: (down: ReturnType<typeof greeterClient>) => Parameters<typeof startGreeter>[0],
    upstreamOptions: Parameters<typeof startGreeter>[1] = {},
  ) {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const traced = tracingInterceptor({ enabled: true, tracerProvider: provider });
    const { server: downstream, address: downAddress } = await startGreeter({}, { tracing: false });
    const down = greeterClient(downAddress, { tracing: false, interceptors: [traced] });
    const { server, address } = await startGreeter(upstream(down), { tracing: false, interceptors: [traced], ...upstreamOptions });
    const client = greeterClient(address, { tracing: false });
    await client.sayHello({ name: "chain" });
    client.$close();
    down.$close();
    await server.shutdown({ graceMs: 100 });
    await downstream.shutdown({ graceMs: 100 });
    const spans = exporter.getFinishedSpans();
    const started = (s: (typeof spans)[number]) => s.startTime[0] * 1e9 + s.startTime[1];
    return {
      serverSpan: spans.find((s) => s.kind === SpanKind.SERVER)!,
      calls: spans.filter((s) => s.kind === SpanKind.CLIENT).sort((a, b) => started(a) - started(b)),
    };
  }

  it("still parents a handler's outgoing call on the server span, through the call scope", async () => {
    const { serverSpan, calls } = await tracedChain((down) => ({
      async sayHello(req) {
        await Promise.all([down.sayHello({ name: req.name }), down.sayHello({ name: req.name })]);
        return { message: "ok" };
      },
    }));
    expect(calls).to.have.length(2);
    for (const call of calls) {
      expect(call.parentSpanContext?.spanId).to.equal(serverSpan.spanContext().spanId);
      expect(call.spanContext().traceId).to.equal(serverSpan.spanContext().traceId);
    }
  });

  it("parents a call made with an explicit parent on that call's server span, with the call scope off", async () => {
    const { serverSpan, calls } = await tracedChain(
      (down) => ({
        async sayHello(req, ctx) {
          await down.sayHello({ name: req.name }, { parent: ctx });
          await down.sayHello({ name: req.name }); // no scope, no parent: a trace of its own
          return { message: "ok" };
        },
      }),
      { callScope: false },
    );
    expect(calls).to.have.length(2);
    expect(calls[0]!.parentSpanContext?.spanId, "with parent").to.equal(serverSpan.spanContext().spanId);
    expect(calls[0]!.spanContext().traceId).to.equal(serverSpan.spanContext().traceId);
    expect(calls[1]!.spanContext().traceId, "without parent").to.not.equal(serverSpan.spanContext().traceId);
  });
});
