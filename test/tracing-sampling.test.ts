import { expect } from "chai";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import type { Server } from "protomesh";
import { setupTracing, type TracingHandle } from "protomesh/tracing";
import { startGreeter, greeterClient, collect } from "./helpers/greeter";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$/;

/** Trace id and sampled flag of a `traceparent` header. */
function parse(header: string | undefined): { traceId: string; spanId: string; sampled: boolean } {
  const m = TRACEPARENT.exec(header ?? "");
  expect(m, `traceparent "${header}"`).to.not.equal(null);
  return { traceId: m![1]!, spanId: m![2]!, sampled: m![3] === "1" };
}

/**
 * A caller → front → back chain, every process traced by `setupTracing` with half of the
 * root spans sampled: some calls are recorded and some are not, and each must be recorded
 * entirely or not at all.
 */
describe("tracing: sampled and unsampled calls (parent-based ratio sampler)", () => {
  const CALLS = 40;
  let exporter: InMemorySpanExporter;
  let stop: TracingHandle;
  let front: Server;
  let back: Server;
  let client: ReturnType<typeof greeterClient>;
  let downstream: ReturnType<typeof greeterClient>;
  /** The `traceparent` each server received, by request name. */
  const atFront = new Map<string, string>();
  const atBack = new Map<string, string>();

  before(async () => {
    exporter = new InMemorySpanExporter();
    stop = setupTracing({ serviceName: "sampling-test", exporter, sampleRatio: 0.5, exportDelayMs: 1 });
    const started = await startGreeter({
      async sayHello(req, ctx) {
        atBack.set(req.name, String(ctx.metadata.get("traceparent")[0] ?? ""));
        return { message: `hi ${req.name}` };
      },
    });
    back = started.server;
    downstream = greeterClient(started.address);
    const fronted = await startGreeter({
      async sayHello(req, ctx) {
        atFront.set(req.name, String(ctx.metadata.get("traceparent")[0] ?? ""));
        return downstream.sayHello({ name: req.name });
      },
      async *streamHellos(req, ctx) {
        atFront.set(req.name, String(ctx.metadata.get("traceparent")[0] ?? ""));
        // The call runs while the response stream is read, after the handler has returned it.
        yield { message: (await downstream.sayHello({ name: req.name })).message, servedBy: "front", at: undefined };
      },
    });
    front = fronted.server;
    client = greeterClient(fronted.address);
    for (let i = 0; i < CALLS; i++) await client.sayHello({ name: `u${i}` });
    for (let i = 0; i < CALLS / 2; i++) await collect(client.streamHellos({ name: `s${i}`, count: 1 }));
    await stop.flush();
  });

  after(async () => {
    client.$close();
    downstream.$close();
    await front.shutdown({ graceMs: 100 });
    await back.shutdown({ graceMs: 100 });
    await stop();
  });

  const names = () => [...atFront.keys()];
  const spansOf = (traceId: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

  it("samples some calls and not others (each decided once, at the root)", () => {
    expect(atFront.size).to.equal(CALLS + CALLS / 2);
    const sampled = names().filter((n) => parse(atFront.get(n)).sampled);
    expect(sampled.length, "sampled calls").to.be.within(1, names().length - 1);
  });

  it("records no span of an unsampled call, yet propagates its trace id with the sampled flag off", () => {
    const unsampled = names().filter((n) => !parse(atFront.get(n)).sampled);
    expect(unsampled).to.not.be.empty;
    for (const name of unsampled) {
      const first = parse(atFront.get(name));
      const second = parse(atBack.get(name));
      expect(second.traceId, `${name}: the front's own call stays in the trace`).to.equal(first.traceId);
      expect(second.sampled, `${name}: and keeps the decision`).to.equal(false);
      expect(second.spanId, `${name}: under the front's (unrecorded) span`).to.not.equal(first.spanId);
      expect(spansOf(first.traceId), `${name}: spans`).to.be.empty;
    }
  });

  it("records every span of a sampled call, with all its attributes", () => {
    const sampled = names().filter((n) => parse(atFront.get(n)).sampled);
    expect(sampled).to.not.be.empty;
    for (const name of sampled) {
      const first = parse(atFront.get(name));
      const second = parse(atBack.get(name));
      expect(second.traceId).to.equal(first.traceId);
      expect(second.sampled, `${name}: the front's call is sampled too`).to.equal(true);
      const spans = spansOf(first.traceId);
      expect(spans, `${name}: caller, front (server and client), back`).to.have.length(4);
      const clients = spans.filter((s) => s.kind === SpanKind.CLIENT);
      const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
      expect(clients).to.have.length(2);
      expect(servers).to.have.length(2);
      for (const span of spans) {
        expect(span.attributes, `${name} ${span.name}`).to.include({ "rpc.system": "grpc", "rpc.service": "examples.greeter.v1.Greeter", "rpc.grpc.status_code": 0 });
        expect(span.attributes["rpc.method"]).to.be.oneOf(["SayHello", "StreamHellos"]);
      }
      for (const span of clients) {
        expect(span.attributes["server.address"]).to.equal("127.0.0.1");
        expect(span.attributes["server.port"]).to.be.a("number");
      }
      for (const span of servers) {
        expect(span.attributes["network.peer.address"]).to.equal("127.0.0.1");
        expect(span.attributes["network.peer.port"]).to.be.a("number");
      }
      // The front's server span is the parent of its call to the back, and the child of the caller's.
      const frontServer = servers.find((s) => s.parentSpanContext?.spanId === first.spanId);
      expect(frontServer, `${name}: front server span under the caller's span`).to.exist;
      const frontCall = clients.find((s) => s.spanContext().spanId === second.spanId);
      expect(frontCall?.parentSpanContext?.spanId, `${name}: front's call under its server span`).to.equal(frontServer!.spanContext().spanId);
    }
  });
});
