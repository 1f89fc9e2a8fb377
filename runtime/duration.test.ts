import { expect } from "chai";
import { formatDuration, parseDuration } from "./duration";

describe("release durations", () => {
  it("reads Go-style durations, compound ones included", () => {
    expect(parseDuration("250ms")).to.equal(250);
    expect(parseDuration("1.5s")).to.equal(1500);
    expect(parseDuration("1h30m")).to.equal(5_400_000);
    expect(parseDuration("0")).to.equal(0);
  });
  it("rejects a number without a unit and trailing garbage, naming the text", () => {
    for (const bad of ["10", "", "5x", "1s5", "s"]) expect(() => parseDuration(bad)).to.throw(RangeError, "bad duration");
  });
  it("prints durations compactly", () => {
    expect(formatDuration(90_000)).to.equal("1m30s");
    expect(formatDuration(400)).to.equal("400ms");
    expect(formatDuration(3_600_000)).to.equal("1h");
  });
});
