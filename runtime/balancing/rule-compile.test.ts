import { expect } from "chai";
import { compileTrafficRule, validateTrafficRule } from "./rule-compile";
import { TrafficRuleError } from "./rule-errors";
import { canaryRule, blueGreenRule } from "./rule-builders";

const subsets = { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } };

function problemAt(input: unknown): string[] {
  return validateTrafficRule(input).map((p) => `${p.path}: ${p.message}`);
}

describe("traffic rule validation", () => {
  it("accepts a rule with subsets, matches, a weighted split, sticky keys, fallback and zone preference", () => {
    const rule = compileTrafficRule({
      description: "v2 for testers, 5 % of users",
      subsets,
      sticky: { header: "x-user" },
      routes: [
        { name: "testers", match: { headers: { "x-tester": "yes" }, method: { prefix: "/shop." } }, to: [{ subset: "canary" }] },
        { to: [{ subset: "stable", weight: 95 }, { subset: "canary", weight: 5 }], fallback: { subset: "stable" } },
      ],
      fallback: "fail",
      zone: { prefer: true, minReady: 2, minShare: 0.3 },
    });
    expect(rule.routes.map((r) => r.name)).to.deep.equal(["testers", "routes[1]"]);
    expect(rule.routes[1].targets.map((t) => t.upper)).to.deep.equal([0.95, 1]);
    expect(rule.routes[0].fallback).to.deep.equal({ kind: "fail" });
    expect(rule.routes[1].fallback).to.deep.equal({ kind: "subset", subset: "stable" });
    expect(rule.zone).to.deep.equal({ minReady: 2, minShare: 0.3 });
    expect(rule.sticky.header).to.equal("x-user");
  });

  it("accepts the empty rule: every request goes to every instance", () => {
    const rule = compileTrafficRule({});
    expect(rule.routes).to.have.length(0);
    expect(rule.fallback).to.deep.equal({ kind: "rest" });
  });

  it("names the field of an invalid regular expression", () => {
    const input = { subsets, routes: [{ to: [{ subset: "stable" }] }, { match: { headers: { "x-user": { regex: "(" } } }, to: [{ subset: "canary" }] }] };
    expect(() => compileTrafficRule(input)).to.throw(TrafficRuleError, /^routes\[1\]\.match\.headers\.x-user\.regex: invalid regular expression/);
  });

  it("lists every problem, each at its path", () => {
    const problems = problemAt({
      subsets: { stable: { labels: {} }, "bad name!": { labels: { version: "v1" } } },
      routes: [
        { to: [{ subset: "canary", weigth: 5 }] },
        { match: { percent: 140, method: { glob: "*" } }, to: [{ subset: "stable", weight: -1 }] },
        { to: [] },
        { to: [{ subset: "stable", weight: 0 }] },
      ],
      fallback: "sometimes",
      zone: { prefer: "yes" },
      colour: "blue",
    });
    expect(problems).to.include.members([
      "subsets.stable.labels: needs at least one label (a subset of every instance is no subset)",
      "routes[0].to[0].weigth: unknown field (expected one of subset, weight)",
      'routes[0].to[0].subset: no subset "canary" is defined (defined: stable, bad name!)',
      "routes[1].match.percent: must be a number from 0 to 100, got 140",
      'routes[1].match.method: must be a string or an object with exactly one of exact, prefix, regex; got keys ["glob"]',
      "routes[1].to[0].weight: must be an integer from 0 to 1000000, got -1",
      "routes[2].to: needs 1 to 16 targets, got 0",
      "routes[3].to: the weights add up to 0: at least one target needs a weight above 0",
      'fallback: must be "rest", "fail" or { subset: <name> }, got "sometimes"',
      "zone.prefer: must be true or false, got \"yes\"",
      "colour: unknown field (expected one of description, subsets, routes, sticky, fallback, zone)",
    ]);
    expect(problems.some((p) => p.startsWith("subsets.bad name!:"))).to.equal(true);
  });

  it("refuses what is not a rule at all, without throwing anything but TrafficRuleError", () => {
    for (const input of [null, 42, "rule", [], undefined, { routes: "all" }, { subsets: [] }, { routes: [null] }]) {
      expect(() => compileTrafficRule(input), JSON.stringify(input)).to.throw(TrafficRuleError);
    }
  });

  it("refuses upper-case header names and a fallback to an undefined subset", () => {
    expect(problemAt({ subsets, routes: [{ match: { headers: { "X-User": "a" } }, to: [{ subset: "canary" }] }], fallback: { subset: "old" } })).to.deep.equal([
      'fallback.subset: must name a defined subset, got "old"',
      "routes[0].match.headers.X-User: a header name is lower-case letters, digits and - _ . (gRPC metadata keys are lower-case)",
    ]);
  });

  it("keeps a deep copy of the source, unaffected by later edits of the input", () => {
    const input = { subsets: { a: { labels: { zone: "z1" } } }, routes: [{ to: [{ subset: "a" }] }] };
    const rule = compileTrafficRule(input);
    input.subsets.a.labels.zone = "z2";
    expect(rule.source.subsets!.a.labels.zone).to.equal("z1");
  });

  it("builds canary and blue-green rules that validate", () => {
    const canary = canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 25, sticky: { header: "x-user" }, canaryMatch: { headers: { "x-tester": "1" } } });
    expect(validateTrafficRule(canary)).to.deep.equal([]);
    expect(canary.routes![1].to).to.deep.equal([{ subset: "stable", weight: 75 }, { subset: "canary", weight: 25 }]);
    expect(validateTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 0 }))).to.deep.equal([]);
    expect(validateTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 100 }))).to.deep.equal([]);
    expect(() => canaryRule({ stable: {}, canary: {}, canaryWeight: 101 })).to.throw(RangeError, /canaryWeight/);
    const bg = blueGreenRule({ blue: { version: "v1" }, green: { version: "v2" }, active: "green" });
    expect(validateTrafficRule(bg)).to.deep.equal([]);
    expect(compileTrafficRule(bg).routes[0].targets[0].subset).to.equal("green");
  });
});
