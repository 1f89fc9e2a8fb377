import { expect } from "chai";
import { callTree, stagesOf } from "./call-tree";
import type { TraceSpan } from "./span";

function span(spanId: string, parentSpanId: string | undefined, startUs: number, endUs: number, extra: Partial<TraceSpan> = {}): TraceSpan {
  return { traceId: "t".repeat(32), spanId, ...(parentSpanId ? { parentSpanId } : {}), service: "s", name: spanId, kind: "server", startUs, endUs, status: "unset", statusMessage: "", attributes: {}, ...extra };
}

describe("console call tree", () => {
  it("puts overlapping siblings in one parallel stage and later ones in the next stage", () => {
    const stages = stagesOf([span("b", "a", 10, 50), span("c", "a", 12, 40), span("d", "a", 60, 70)]);
    expect(stages.map((g) => g.map((s) => s.spanId))).to.deep.equal([["b", "c"], ["d"]]);
  });

  it("treats siblings that touch end-to-start as serial", () => {
    expect(stagesOf([span("b", "a", 0, 10), span("c", "a", 10, 20)]).length).to.equal(2);
  });

  it("orders rows depth-first with depths, and marks parallel rows with their partners", () => {
    const rows = callTree([span("a", undefined, 0, 100), span("b", "a", 10, 50), span("c", "a", 11, 60), span("d", "b", 20, 30)]);
    expect(rows.map((r) => [r.span.spanId, r.depth])).to.deep.equal([["a", 0], ["b", 1], ["d", 2], ["c", 1]]);
    const b = rows.find((r) => r.span.spanId === "b")!;
    expect(b.parallel).to.equal(true);
    expect(b.parallelWith).to.deep.equal(["c"]);
    expect(rows.find((r) => r.span.spanId === "d")!.parallel).to.equal(false);
    expect(b.offset).to.be.closeTo(0.1, 1e-9);
    expect(b.width).to.be.closeTo(0.4, 1e-9);
  });

  it("shows spans whose parent is missing as roots and survives a parent cycle", () => {
    const rows = callTree([span("x", "missing", 0, 10), span("p", "q", 0, 5), span("q", "p", 1, 4)]);
    expect(rows.map((r) => r.span.spanId).sort()).to.deep.equal(["p", "q", "x"]);
    const rows2 = callTree([span("x", "missing", 0, 10), span("y", "x", 1, 2, { status: "error" })]);
    expect(rows2.map((r) => r.span.spanId)).to.deep.equal(["x", "y"]);
    expect(rows2[1]!.error).to.equal(true);
  });
});
