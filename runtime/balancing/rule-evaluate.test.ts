import { expect } from "chai";
import fc from "fast-check";
import { compileTrafficRule } from "./rule-compile";
import { canaryRule } from "./rule-builders";
import { chooseRoute, evaluate, TrafficPlan, type LabeledInstance, type RequestAttributes } from "./rule-evaluate";

interface Inst extends LabeledInstance {
  readonly id: string;
  readonly version: string;
  readonly zone: string;
  readonly metadata: Record<string, string>;
}

const inst = (id: string, version: string, zone = "z1", metadata: Record<string, string> = {}): Inst => ({ id, version, zone, metadata });
const fleet = [inst("a", "v1", "z1"), inst("b", "v1", "z2"), inst("c", "v2", "z1", { lane: "blue" }), inst("d", "v2", "z2")];
const ids = (xs: readonly Inst[]) => xs.map((x) => x.id);

function req(headers: Record<string, string> = {}, extra: Partial<RequestAttributes> = {}): RequestAttributes {
  return { method: "/shop.Cart/Add", header: (h) => headers[h], ...extra };
}

const canary5 = compileTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 5, sticky: { header: "x-user" } }));

describe("traffic rule evaluation", () => {
  it("sends a request that matches no route to every instance", () => {
    const rule = compileTrafficRule({ subsets: { canary: { labels: { version: "v2" } } }, routes: [{ match: { method: "Remove" }, to: [{ subset: "canary" }] }] });
    const d = evaluate(rule, req(), fleet);
    expect(d).to.include({ status: "ok", route: undefined, subset: undefined, served: "*", fellBack: false });
    expect(ids(d.instances)).to.deep.equal(["a", "b", "c", "d"]);
  });

  it("matches on method (bare name or full path), header exact/prefix/regex and attributes", () => {
    const rule = compileTrafficRule({
      subsets: { v1: { labels: { version: "v1" } }, v2: { labels: { version: "v2" } }, blue: { labels: { lane: "blue" } } },
      routes: [
        { name: "by-method", match: { method: "Remove" }, to: [{ subset: "v2" }] },
        { name: "by-full-path", match: { method: { exact: "/shop.Cart/List" } }, to: [{ subset: "blue" }] },
        { name: "by-prefix", match: { headers: { "x-user": { prefix: "staff-" } } }, to: [{ subset: "v2" }] },
        { name: "by-regex", match: { headers: { "x-user": { regex: "qa-[0-9]+" } } }, to: [{ subset: "blue" }] },
        { name: "by-claim", match: { attributes: { "jwt.plan": "beta" } }, to: [{ subset: "v2" }] },
        { name: "default", to: [{ subset: "v1" }] },
      ],
    });
    const route = (r: RequestAttributes) => chooseRoute(rule, r).route?.name;
    expect(route(req({}, { method: "/shop.Cart/Remove" }))).to.equal("by-method");
    expect(route(req({}, { method: "/shop.Cart/List" }))).to.equal("by-full-path");
    expect(route(req({}, { method: "/other.Cart/List" }))).to.equal("default");
    expect(route(req({ "x-user": "staff-ann" }))).to.equal("by-prefix");
    expect(route(req({ "x-user": "qa-17" }))).to.equal("by-regex");
    expect(route(req({ "x-user": "qa-17x" })), "a regex matches the whole value").to.equal("default");
    expect(route(req({}, { attribute: (a) => (a === "jwt.plan" ? "beta" : undefined) }))).to.equal("by-claim");
    expect(route({})).to.equal("default");
    const d = evaluate(rule, req({ "x-user": "qa-1" }), fleet);
    expect(ids(d.instances)).to.deep.equal(["c"]);
    expect(d.subset).to.equal("blue");
  });

  it("falls back to the rest of the service when the subset has nothing READY (fallback: rest)", () => {
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ to: [{ subset: "v2" }] }] });
    const d = evaluate(rule, req(), fleet, { isReady: (i) => i.version !== "v2" });
    expect(d).to.include({ status: "ok", served: "rest", fellBack: true, subset: "v2" });
    expect(ids(d.instances)).to.deep.equal(["a", "b"]);
  });

  it("fails with a message under fallback: fail, and waits while the subset is still connecting", () => {
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ to: [{ subset: "v2" }] }], fallback: "fail" });
    const down = evaluate(rule, req(), fleet, { isReady: (i) => i.version !== "v2" });
    expect(down.status).to.equal("unavailable");
    expect(down.instances).to.have.length(0);
    expect(down.message).to.match(/subset "v2" has no READY instance and its fallback is "fail"/);
    const connecting = evaluate(rule, req(), fleet, { isReady: (i) => i.version !== "v2", isConnecting: (i) => i.id === "d" });
    expect(connecting.status).to.equal("wait");
    const empty = evaluate(rule, req(), fleet.filter((i) => i.version === "v1"));
    expect(empty.status).to.equal("unavailable");
  });

  it("falls back to a named subset and fails when that has nothing either", () => {
    const rule = compileTrafficRule({
      subsets: { v1: { labels: { version: "v1" } }, v2: { labels: { version: "v2" } }, v3: { labels: { version: "v3" } } },
      routes: [{ to: [{ subset: "v3" }], fallback: { subset: "v2" } }],
    });
    const d = evaluate(rule, req(), fleet);
    expect(d).to.include({ status: "ok", served: "v2", fellBack: true });
    expect(ids(d.instances)).to.deep.equal(["c", "d"]);
    const none = evaluate(rule, req(), fleet, { isReady: (i) => i.version === "v1" });
    expect(none.status).to.equal("unavailable");
    expect(none.message).to.match(/nor has its fallback subset "v2"/);
  });

  it("prefers the caller's zone and spills over when it has too few READY instances", () => {
    const rule = compileTrafficRule({ zone: { prefer: true, minReady: 1 } });
    expect(ids(evaluate(rule, req(), fleet, { zone: "z2" }).instances)).to.deep.equal(["b", "d"]);
    const spill = evaluate(rule, req(), fleet, { zone: "z2", isReady: (i) => i.zone !== "z2" });
    expect(spill.zoneLocal).to.equal(false);
    expect(ids(spill.instances)).to.deep.equal(["a", "c"]);
    const strict = compileTrafficRule({ zone: { prefer: true, minReady: 2 } });
    expect(ids(evaluate(strict, req(), fleet, { zone: "z2", isReady: (i) => i.id !== "d" }).instances), "one of two is not enough").to.deep.equal(["a", "b", "c"]);
    const share = compileTrafficRule({ zone: { prefer: true, minShare: 0.5 } });
    const big = [...fleet, inst("e", "v1", "z1"), inst("f", "v1", "z1")];
    expect(ids(evaluate(share, req(), big, { zone: "z2" }).instances), "2 of 6 is under half").to.have.length(6);
    expect(ids(evaluate(share, req(), big, { zone: "z1" }).instances)).to.deep.equal(["a", "c", "e", "f"]);
    expect(ids(evaluate(rule, req(), fleet).instances), "no caller zone: no preference").to.have.length(4);
  });

  it("applies zone preference inside the chosen subset", () => {
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ to: [{ subset: "v2" }] }], zone: { prefer: true } });
    expect(ids(evaluate(rule, req(), fleet, { zone: "z2" }).instances)).to.deep.equal(["d"]);
  });

  it("reads version, zone and id from the registration and other labels from metadata, with lists as any-of", () => {
    const rule = compileTrafficRule({
      subsets: { pick: { labels: { zone: ["z2", "z3"], version: "v2" } }, one: { labels: { id: "a" } }, lane: { labels: { lane: "blue" } } },
      routes: [{ match: { headers: { s: "pick" } }, to: [{ subset: "pick" }] }, { match: { headers: { s: "one" } }, to: [{ subset: "one" }] }, { to: [{ subset: "lane" }] }],
      fallback: "fail",
    });
    expect(ids(evaluate(rule, req({ s: "pick" }), fleet).instances)).to.deep.equal(["d"]);
    expect(ids(evaluate(rule, req({ s: "one" }), fleet).instances)).to.deep.equal(["a"]);
    expect(ids(evaluate(rule, req(), fleet).instances)).to.deep.equal(["c"]);
  });

  it("takes a percentage of keys, the same keys every time", () => {
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, sticky: { header: "x-user" }, routes: [{ match: { percent: 10 }, to: [{ subset: "v2" }] }] });
    let taken = 0;
    for (let i = 0; i < 10_000; i++) {
      const a = chooseRoute(rule, req({ "x-user": `u${i}` })).subset;
      expect(chooseRoute(rule, req({ "x-user": `u${i}` })).subset).to.equal(a);
      if (a === "v2") taken++;
    }
    expect(taken / 100).to.be.within(9, 11);
  });

  it("uses the caller's hashKey before the sticky header, and draws at random without a key", () => {
    let draws = 0;
    const random = () => (draws++, 0.99);
    expect(chooseRoute(canary5, req({}), random).subset).to.equal("canary");
    expect(draws).to.equal(1);
    const byHeader = chooseRoute(canary5, req({ "x-user": "k" })).subset;
    const byKey = chooseRoute(canary5, req({ "x-user": "other" }, { hashKey: "k" })).subset;
    expect(byKey).to.equal(byHeader);
  });

  it("caches resolutions in a plan: one partition per instance set", () => {
    let readyCalls = 0;
    const plan = new TrafficPlan(canary5, fleet, { isReady: () => (readyCalls++, true) });
    for (let i = 0; i < 100; i++) plan.decide(req({ "x-user": `u${i}` }));
    expect(readyCalls).to.equal(4, "stable (2) + canary (2), each filtered once");
  });
});

describe("traffic rule properties", () => {
  const keys = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 24 }), { minLength: 10_000, maxLength: 10_000 });

  it("a 5 % canary takes 5 % ± 1 point of 10,000 distinct keys", () => {
    fc.assert(
      fc.property(keys, (ks) => {
        let canary = 0;
        for (const k of ks) if (chooseRoute(canary5, { hashKey: k }).subset === "canary") canary++;
        return Math.abs(canary / ks.length - 0.05) <= 0.01;
      }),
      { numRuns: 20 },
    );
  });

  // A hash split of n keys is binomial: its standard deviation is √(p(1−p)/n), 0.5 point at a
  // 50/50 split of 10,000 keys. ±1 point holds at the 5 % canary (4.5 σ) but would be a 2 σ
  // coin toss at 50/50, so the bound is 4.5 σ, and never looser than 1 point.
  it("any weight split is met within 4.5 standard deviations (≥ ±1 point) over 10,000 keys", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 1, max: 1_000_000 }), (w, seed) => {
        const rule = compileTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: w }));
        let canary = 0;
        for (let i = 0; i < 10_000; i++) if (chooseRoute(rule, { hashKey: `${seed}:${i}` }).subset === "canary") canary++;
        const p = w / 100;
        const sigmaPoints = 100 * Math.sqrt((p * (1 - p)) / 10_000);
        return Math.abs(canary / 100 - w) <= Math.max(1, 4.5 * sigmaPoints);
      }),
      { numRuns: 30 },
    );
  });

  it("a key keeps its side while the rule is unchanged, and a growing canary only gains keys", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 1, max: 100 }), (key, w1, step) => {
        const w2 = Math.min(100, w1 + step);
        const r1 = compileTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: w1, sticky: { header: "x-user" } }));
        const r2 = compileTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: w2, sticky: { header: "x-user" } }));
        const request = req({ "x-user": key });
        const first = chooseRoute(r1, request).subset;
        for (let i = 0; i < 3; i++) if (chooseRoute(r1, request).subset !== first) return false;
        return first !== "canary" || chooseRoute(r2, request).subset === "canary";
      }),
      { numRuns: 2000 },
    );
  });

  it("evaluation never throws and only returns instances of the decided group", () => {
    const rule = compileTrafficRule({
      subsets: { v1: { labels: { version: "v1" } }, v2: { labels: { version: "v2" } } },
      sticky: { header: "x-user" },
      routes: [{ match: { headers: { "x-user": { regex: "a.*" } } }, to: [{ subset: "v2" }] }, { to: [{ subset: "v1", weight: 3 }, { subset: "v2", weight: 1 }] }],
      zone: { prefer: true },
    });
    const instance = fc.record({ id: fc.string(), version: fc.constantFrom("v1", "v2", "v3"), zone: fc.constantFrom("z1", "z2"), metadata: fc.constant({}) });
    fc.assert(
      fc.property(fc.array(instance, { maxLength: 12 }), fc.string(), fc.func<[Inst], boolean>(fc.boolean()), fc.constantFrom("z1", "z2", undefined), (instances, user, ready, zone) => {
        const d = evaluate(rule, req({ "x-user": user }), instances, { isReady: ready, zone });
        if (d.status !== "ok") return d.instances.length === 0;
        return d.instances.every((i) => instances.includes(i) && ready(i) && (d.served === "*" || d.served === "rest" || i.version === d.served));
      }),
      { numRuns: 300 },
    );
  });
});
