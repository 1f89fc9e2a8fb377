import { expect } from "chai";
import { parseProperties, propertiesToTree } from "./properties";

describe(".properties reading", () => {
  it("follows java.util.Properties syntax: separators, comments, continuations, escapes", () => {
    const entries = parseProperties(
      [
        "# comment",
        "! another comment",
        "a=1",
        "  b : two words ",
        "c three",
        "d=first \\",
        "   second",
        "e\\=key=x\\ty\\u00e9",
        "f=",
        "",
        "g = ends with backslash \\\\",
      ].join("\n"),
    );
    expect(entries.map((e) => [e.key, e.value, e.line])).to.deep.equal([
      ["a", "1", 3],
      ["b", "two words ", 4],
      ["c", "three", 5],
      ["d", "first second", 6],
      ["e=key", "x\tyé", 8],
      ["f", "", 9],
      ["g", "ends with backslash \\", 11],
    ]);
  });

  it("nests dotted keys and indexed lists, in any order", () => {
    const { value, issues } = propertiesToTree(
      parseProperties(["limits.burst=3", "names[1]=b", "names[0]=a", 'tr["pt-BR"]=Olá', "nested[0].x=1"].join("\n")),
    );
    expect(issues).to.deep.equal([]);
    expect(value).to.deep.equal({ limits: { burst: "3" }, names: ["a", "b"], tr: { "pt-BR": "Olá" }, nested: [{ x: "1" }] });
  });

  it("reports duplicates, gaps and keys used both as a value and a parent, with lines", () => {
    const { issues } = propertiesToTree(parseProperties(["a=1", "a.b=2", "a=3", "list[1]=x", "bad..key=1"].join("\n")));
    expect(issues.map((i) => `${i.line}: ${i.message}`)).to.deep.equal([
      "2: a has a value and is also a parent of other keys",
      "3: a is already set on line 1",
      '5: bad path "bad..key": empty name at 4',
      "4: list[0] is missing (list indices must start at 0 without gaps)",
    ]);
  });
});
