import { expect } from "chai";
import { diffConfig, formatDiff } from "./diff";
import { formatPath, parsePath, setPath } from "./json-path";

describe("config paths and diffs", () => {
  it("parses and formats paths with names, indices and quoted keys", () => {
    expect(parsePath('a.b[2]["x.y"].c')).to.deep.equal(["a", "b", 2, "x.y", "c"]);
    expect(formatPath(["a", "b", 2, "x.y", "c"])).to.equal('a.b[2]["x.y"].c');
    expect(() => parsePath("a.")).to.throw(/ends with a dot/);
  });

  it("sets values along a path, creating objects and lists", () => {
    const root: Record<string, unknown> = { a: { keep: 1 } };
    setPath(root, ["a", "b", 0, "c"], 5);
    expect(root).to.deep.equal({ a: { keep: 1, b: [{ c: 5 }] } });
    expect(() => setPath(root, ["a", "keep", "x"], 1)).to.throw(/a\.keep already holds 1/);
  });

  it("lists added, removed and changed leaves in path order", () => {
    const d = diffConfig({ a: 1, b: { c: [1, 2] }, gone: true }, { a: 2, b: { c: [1, 3, 4] }, added: "x" });
    expect(formatDiff(d)).to.equal(["~ a: 1 → 2", '+ added: "x"', "~ b.c[1]: 2 → 3", "+ b.c[2]: 4", "- gone: true"].join("\n"));
    expect(diffConfig({ a: 1 }, { a: 1 })).to.deep.equal([]);
  });
});
