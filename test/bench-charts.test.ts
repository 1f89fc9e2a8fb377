/** The bench's SVG charts: bars proportional to the figures, one per value, drawn from run JSON. */
import { expect } from "chai";
import { barChart, ratioChart, type RunJson } from "../bench/charts";

const widths = (svg: string) => [...svg.matchAll(/<rect x="250" y="\d+" width="([\d.]+)" height="12"/g)].map((m) => Number(m[1]));

describe("bench charts", () => {
  it("draws one bar per value, with widths proportional to the values", () => {
    const svg = barChart({ title: "t", unit: "×", categories: ["a", "b"], series: [{ name: "s", values: [1, 2] }] });
    expect(svg.startsWith("<svg")).to.equal(true);
    const [a, b] = widths(svg);
    expect(a).to.be.greaterThan(0);
    expect(b! / a!).to.be.closeTo(2, 0.01);
  });

  it("skips a missing value and escapes labels", () => {
    const svg = barChart({ title: "x < y", unit: "", categories: ["a", "b"], series: [{ name: "s", values: [undefined, 3] }] });
    expect(widths(svg)).to.have.length(1);
    expect(svg).to.contain("x &lt; y");
  });

  it("computes protomesh ÷ raw from a run's rounds as the median of per-round ratios", () => {
    const w = (rate: number) => ({ rate, p50Ms: 1, p99Ms: 2 });
    const run: RunJson = {
      node: "24.0.0",
      sections: [{ title: "3. Server streaming, 1 KiB messages", data: { raw: [w(100), w(200), w(100)], protomesh: [w(90), w(100), w(110)] } }],
    };
    const svg = ratioChart([run]);
    // Per-round ratios 0.9, 0.5, 1.1: the median is 0.90.
    expect(svg).to.contain(">0.90×<");
    expect(svg).to.contain("Node 24.0.0");
  });
});
