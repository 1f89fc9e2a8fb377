import { expect } from "chai";
import { KitchenSinkDefinition } from "../gen/protomesh/test/v1/kitchen_sink_protomesh";
import { normalizeConfig, schemaFromDescriptors } from "./definition";
import { checkJson } from "./validate";

// Every field shape, from the kitchen-sink test proto (protomesh.test.v1.Item).
const item = schemaFromDescriptors("protomesh.test.v1.Item", KitchenSinkDefinition.descriptors);
const problems = (json: unknown) => checkJson(item.desc, json).issues.map((i) => `${i.path}: ${i.message}`);

describe("config validation against a proto message", () => {
  it("accepts every field shape in its proto JSON form, under JSON or proto names", () => {
    const value = {
      id: "a",
      text: "hello",
      color: "COLOR_RED",
      tags: ["x", "y"],
      counters: { hits: "9007199254740993", misses: 2 },
      priority: 0,
      created_at: "2026-01-31T12:00:00.5+01:00",
      attributes: { any: ["json", 1, null, { deep: true }] },
      root: { kind: "KIND_BRANCH", children: [{ kind: 1, label: "leaf" }] },
      history: [{ currency: "EUR", units: "-5", nanos: 10 }],
      prices: { small: { currency: "USD", units: 3 } },
      score: "NaN",
      archived: null,
    };
    expect(problems(value)).to.deep.equal([]);
    const normalized = normalizeConfig(item, value);
    expect(normalized.ok).to.equal(true);
    if (normalized.ok) expect(normalized.json).to.include({ createdAt: "2026-01-31T11:00:00.500Z", priority: 0, score: "NaN" });
  });

  it("reports every problem at once, each with its path", () => {
    expect(
      problems({
        id: 5,
        text: "a",
        blob: "b",
        color: "COLOR_PURPLE",
        tags: "x",
        counters: { hits: "1.5" },
        priority: 2 ** 31,
        created_at: "yesterday",
        root: { children: [{ kind: "KIND_TREE", childs: [], lable: "typo" }] },
        history: [null],
        prices: { small: "3 USD" },
        score: "high",
        archived: "no",
        extra: 1,
      }),
    ).to.deep.equal([
      "id: expected a string, got 5",
      'color: expected one of COLOR_UNSPECIFIED, COLOR_RED, COLOR_GREEN, COLOR_BLUE, got "COLOR_PURPLE"',
      'tags: expected a list, got "x"',
      'counters.hits: expected an integer, got "1.5"',
      "priority: 2147483648 is out of range (-2147483648 to 2147483647)",
      'created_at: expected an RFC 3339 time such as "2026-01-31T12:00:00Z", got "yesterday"',
      'root.children[0].kind: expected one of KIND_UNSPECIFIED, KIND_LEAF, KIND_BRANCH, got "KIND_TREE"',
      'root.children[0].childs: unknown field "childs" in protomesh.test.v1.Item.Node',
      'root.children[0].lable: unknown field "lable" in protomesh.test.v1.Item.Node (did you mean "label"?)',
      "history[0]: null is not allowed here",
      'prices.small: expected an object (protomesh.test.v1.Money), got "3 USD"',
      'score: expected a number, got "high"',
      'archived: expected true or false, got "no"',
      'extra: unknown field "extra" in protomesh.test.v1.Item',
      ': "text" and "blob" are all set, but only one member of oneof payload may be',
    ]);
  });

  it("rejects a field given under both its names, and a value that is not an object", () => {
    expect(problems({ createdAt: "2026-01-01T00:00:00Z", created_at: "2026-01-01T00:00:00Z" })).to.deep.equal([
      'created_at: field created_at is given twice (as "createdAt" and "created_at")',
    ]);
    expect(problems([1])).to.deep.equal([": expected a JSON object, got a list"]);
  });

  it("can collect unknown fields instead of rejecting them", () => {
    const report = checkJson(item.desc, { id: "a", later: true }, { unknownFields: "ignore" });
    expect(report.issues).to.deep.equal([]);
    expect(report.unknown.map((u) => u.path)).to.deep.equal(["later"]);
    const normalized = normalizeConfig(item, { id: "a", later: true }, { unknownFields: "ignore" });
    expect(normalized).to.deep.equal({ ok: true, json: { id: "a" }, unknown: report.unknown });
  });
});
