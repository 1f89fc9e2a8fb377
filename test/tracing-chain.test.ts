import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { createClient } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { startJaegerAgent, startOtlpReceiver, type Receiver, type ReceivedSpan } from "./helpers/trace-receivers";

/** Spans across processes come from different clocks' views of one machine; allow this much skew (µs). */
const SKEW_US = 3000;

interface Node {
  role: string;
  child: ChildProcess;
  port: number;
  lines: AsyncIterator<string>;
}

async function startNode(role: string, jaeger: Receiver, otlp: Receiver): Promise<Node> {
  const [agentHost, agentPort] = jaeger.endpoint.split(":");
  const child = spawn(process.execPath, [require.resolve("tsx/cli"), path.join(__dirname, "helpers", "chain-node.ts")], {
    env: {
      ...process.env,
      CHAIN_ROLE: role,
      OTEL_SERVICE_NAME: `chain-${role.toLowerCase()}`,
      PROTOMESH_TRACING_EXPORTER: "jaeger,otlp",
      OTEL_EXPORTER_JAEGER_AGENT_HOST: agentHost,
      OTEL_EXPORTER_JAEGER_AGENT_PORT: agentPort,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "20",
    },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  const match = /^READY (\d+)$/.exec(String(first.value));
  if (!match) throw new Error(`chain node ${role} did not start: ${String(first.value)}`);
  return { role, child, port: Number(match[1]), lines };
}

describe("tracing: one trace across processes (A calls B and C at once, B streams from D)", function () {
  this.timeout(60_000);
  let jaeger: Receiver;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let nodes: Node[] = [];
  const traceId = randomBytes(16).toString("hex");
  const rootSpanId = randomBytes(8).toString("hex");
  let reply = "";

  before(async () => {
    jaeger = await startJaegerAgent();
    otlp = await startOtlpReceiver();
    nodes = await Promise.all(["A", "B", "C", "D"].map((role) => startNode(role, jaeger, otlp)));
    const address = (role: string) => `127.0.0.1:${nodes.find((n) => n.role === role)!.port}`;
    const wiring: Record<string, Record<string, string>> = { A: { B: address("B"), C: address("C") }, B: { D: address("D") }, C: {}, D: {} };
    for (const node of nodes) node.child.stdin!.write(`${JSON.stringify(wiring[node.role])}\n`);
    for (const node of nodes) expect((await node.lines.next()).value).to.equal("WIRED");

    // The test plays an outside caller that already has a trace (its own span is the root).
    const client = createClient(GreeterDefinition, address("A"), { tracing: false });
    const res = await client.sayHello({ name: "trace" }, { metadata: { traceparent: `00-${traceId}-${rootSpanId}-01` } });
    reply = res.message;
    client.$close();

    // Closing stdin makes each node shut down and flush its exporters.
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            n.child.once("exit", () => resolve());
            n.child.stdin!.end();
          }),
      ),
    );
    await Promise.all([jaeger.waitFor(7), otlp.waitFor(7)]);
  });

  after(async () => {
    for (const n of nodes) if (n.child.exitCode === null) n.child.kill();
    await jaeger?.close();
    await otlp?.close();
  });

  it("answers through the whole chain", () => {
    expect(reply).to.equal("B(D,D,D) + Hello, trace!");
  });

  for (const via of ["Jaeger agent (Thrift over UDP)", "OTLP/HTTP"]) {
    describe(`as received by the ${via}`, () => {
      const spansOf = () => (via.startsWith("Jaeger") ? jaeger.spans : otlp.spans);
      const find = (service: string, kind: string, name: string): ReceivedSpan => {
        const found = spansOf().filter((s) => s.service === service && s.kind === kind && s.name.endsWith(`/${name}`));
        expect(found, `${kind} span ${service} ${name}`).to.have.length(1);
        return found[0]!;
      };

      it("holds seven spans, all in the caller's trace", () => {
        expect(spansOf()).to.have.length(7);
        for (const s of spansOf()) expect(s.traceId).to.equal(traceId);
      });

      it("links every span to its parent: A under the caller, B and C under A's calls, D under B's call", () => {
        const aServer = find("chain-a", "server", "SayHello");
        const aToB = spansOf().filter((s) => s.service === "chain-a" && s.kind === "client");
        expect(aToB).to.have.length(2);
        const bServer = find("chain-b", "server", "SayHello");
        const cServer = find("chain-c", "server", "SayHello");
        const bToD = find("chain-b", "client", "StreamHellos");
        const dServer = find("chain-d", "server", "StreamHellos");

        expect(aServer.parentSpanId).to.equal(rootSpanId);
        for (const call of aToB) expect(call.parentSpanId).to.equal(aServer.spanId);
        expect(aToB.map((c) => c.spanId)).to.have.members([bServer.parentSpanId, cServer.parentSpanId]);
        expect(bToD.parentSpanId).to.equal(bServer.spanId);
        expect(dServer.parentSpanId).to.equal(bToD.spanId);
      });

      it("nests every span inside its parent's time, and shows A's two calls running at once", () => {
        const byId = new Map(spansOf().map((s) => [s.spanId, s]));
        for (const s of spansOf()) {
          const parent = s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
          if (!parent) continue;
          expect(s.startUs, `${s.service} ${s.kind} ${s.name} starts inside its parent`).to.be.at.least(parent.startUs - SKEW_US);
          expect(s.endUs, `${s.service} ${s.kind} ${s.name} ends inside its parent`).to.be.at.most(parent.endUs + SKEW_US);
          expect(s.endUs).to.be.at.least(s.startUs);
        }
        const [first, second] = spansOf().filter((s) => s.service === "chain-a" && s.kind === "client");
        // Siblings in parallel: each starts before the other ends.
        expect(first!.startUs).to.be.below(second!.endUs);
        expect(second!.startUs).to.be.below(first!.endUs);
        // C sleeps 60 ms: its call cannot be shorter.
        const cServer = find("chain-c", "server", "SayHello");
        expect(cServer.endUs - cServer.startUs).to.be.at.least(55_000);
        // The stream's span lasts until its third message (two 10 ms pauses).
        const dServer = find("chain-d", "server", "StreamHellos");
        expect(dServer.endUs - dServer.startUs).to.be.at.least(18_000);
      });

      it("carries the gRPC semantic-convention attributes", () => {
        const bToD = find("chain-b", "client", "StreamHellos");
        expect(bToD.attributes).to.include({ "rpc.system": "grpc", "rpc.service": "examples.greeter.v1.Greeter", "rpc.method": "StreamHellos", "rpc.grpc.status_code": 0, "server.address": "127.0.0.1" });
        const dServer = find("chain-d", "server", "StreamHellos");
        expect(dServer.attributes).to.include({ "rpc.system": "grpc", "rpc.grpc.status_code": 0, "network.peer.address": "127.0.0.1" });
      });
    });
  }

  it("receives the same spans, ids, parents and times over both protocols", () => {
    expect(otlp.contentTypes[0]).to.match(/^application\/json/);
    const key = (s: ReceivedSpan) => s.spanId;
    const fromOtlp = new Map(otlp.spans.map((s) => [key(s), s]));
    expect(jaeger.spans.map(key)).to.have.members(otlp.spans.map(key));
    for (const j of jaeger.spans) {
      const o = fromOtlp.get(key(j))!;
      expect({ service: j.service, traceId: j.traceId, parent: j.parentSpanId, name: j.name, kind: j.kind }).to.deep.equal({
        service: o.service,
        traceId: o.traceId,
        parent: o.parentSpanId,
        name: o.name,
        kind: o.kind,
      });
      expect(Math.abs(j.startUs - o.startUs)).to.be.at.most(1);
      expect(Math.abs(j.endUs - o.endUs)).to.be.at.most(1);
    }
  });
});
