import { expect } from "chai";
import { convertTrace } from "./jaeger-source";

describe("console Jaeger source", () => {
  it("turns Jaeger's JSON into spans with parents, services, kinds and errors", () => {
    const spans = convertTrace({
      traceID: "abc",
      processes: { p1: { serviceName: "chain-a" }, p2: { serviceName: "chain-b" } },
      spans: [
        { traceID: "abc", spanID: "1", operationName: "/g.Greeter/SayHello", startTime: 1000, duration: 500, processID: "p1", tags: [{ key: "span.kind", value: "server" }] },
        {
          traceID: "abc",
          spanID: "2",
          operationName: "/g.Greeter/SayHello",
          references: [{ refType: "CHILD_OF", traceID: "abc", spanID: "1" }],
          startTime: 1100,
          duration: 100,
          processID: "p2",
          tags: [{ key: "span.kind", value: "client" }, { key: "error", value: true }, { key: "otel.status_description", value: "boom" }],
        },
      ],
    });
    expect(spans[0]).to.include({ traceId: "0".repeat(29) + "abc", spanId: "0".repeat(15) + "1", service: "chain-a", kind: "server", startUs: 1000, endUs: 1500, status: "unset" });
    expect(spans[0]!.parentSpanId).to.equal(undefined);
    expect(spans[1]).to.include({ parentSpanId: "0".repeat(15) + "1", service: "chain-b", kind: "client", status: "error", statusMessage: "boom" });
  });
});
