/**
 * Validates a traffic rule and turns it into the form evaluated per call: regexes compiled,
 * weights as cumulative fractions, subsets' labels as lists. Every problem is reported with its
 * field path, so an operator sees `routes[1].match.headers.x-user.regex: invalid regular
 * expression` rather than a stack trace in a client.
 */
import { describeValue, fieldPath, ProblemList, TrafficRuleError, type RuleProblem } from "./rule-errors";
import type { FallbackPolicy, StringMatch, TrafficRule } from "./traffic-rule";

/** Tests one string attribute. */
export type Matcher = (value: string) => boolean;

/** A route target with its share as the upper end of its slice of [0, 1). */
export interface CompiledTarget {
  readonly subset: string;
  readonly weight: number;
  /** Cumulative share up to and including this target; the last non-empty target's is 1. */
  readonly upper: number;
}

export type CompiledFallback = { readonly kind: "rest" } | { readonly kind: "fail" } | { readonly kind: "subset"; readonly subset: string };

export interface CompiledRoute {
  /** The route's `name`, or `routes[i]`. */
  readonly name: string;
  readonly index: number;
  readonly method: Matcher | undefined;
  readonly headers: readonly (readonly [string, Matcher])[];
  readonly attributes: readonly (readonly [string, Matcher])[];
  /** Share of keys (0–1) this route takes, or undefined for all. */
  readonly percent: number | undefined;
  readonly targets: readonly CompiledTarget[];
  readonly fallback: CompiledFallback;
}

export interface CompiledSubset {
  readonly name: string;
  readonly labels: readonly { readonly key: string; readonly values: readonly string[] }[];
}

export interface CompiledZonePreference {
  readonly minReady: number;
  readonly minShare: number;
}

/** A validated rule, ready for {@link chooseRoute} and {@link evaluate}. Immutable. */
export interface CompiledRule {
  /** The rule as given (a deep copy), for display and storage. */
  readonly source: TrafficRule;
  readonly subsets: ReadonlyMap<string, CompiledSubset>;
  readonly routes: readonly CompiledRoute[];
  readonly sticky: { readonly header: string | undefined; readonly attribute: string | undefined };
  readonly fallback: CompiledFallback;
  /** Undefined when zone preference is off. */
  readonly zone: CompiledZonePreference | undefined;
}

export const MAX_ROUTES = 256;
export const MAX_SUBSETS = 64;
export const MAX_TARGETS = 16;
export const MAX_REGEX_LENGTH = 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HEADER = /^[0-9a-z!#$%&'*+.^_`|~-]+$/;

/**
 * Validates `input` (a parsed JSON/YAML value) and compiles it. Throws {@link TrafficRuleError}
 * listing every problem.
 *
 * @example
 *   const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ to: [{ subset: "v2" }] }] });
 */
export function compileTrafficRule(input: unknown): CompiledRule {
  const problems = new ProblemList();
  const rule = compileInto(input, problems);
  if (rule === undefined || problems.problems.length > 0) throw new TrafficRuleError(problems.problems);
  return rule;
}

/** Every problem of `input` as a rule; an empty list means it compiles. */
export function validateTrafficRule(input: unknown): RuleProblem[] {
  const problems = new ProblemList();
  compileInto(input, problems);
  return problems.problems;
}

function compileInto(input: unknown, p: ProblemList): CompiledRule | undefined {
  const obj = objectAt(input, "", p);
  if (obj === undefined) return undefined;
  knownKeys(obj, "", ["description", "subsets", "routes", "sticky", "fallback", "zone"], p);
  if (obj.description !== undefined && typeof obj.description !== "string") p.add("description", `must be a string, got ${describeValue(obj.description)}`);

  const subsets = compileSubsets(obj.subsets, p);
  const fallback = obj.fallback === undefined ? REST : compileFallback(obj.fallback, "fallback", subsets, p);
  const routes: CompiledRoute[] = [];
  if (obj.routes !== undefined) {
    if (!Array.isArray(obj.routes)) p.add("routes", `must be a list, got ${describeValue(obj.routes)}`);
    else if (obj.routes.length > MAX_ROUTES) p.add("routes", `at most ${MAX_ROUTES} routes, got ${obj.routes.length}`);
    else obj.routes.forEach((raw, i) => {
      const route = compileRoute(raw, i, subsets, fallback, p);
      if (route) routes.push(route);
    });
  }
  const sticky = compileSticky(obj.sticky, p);
  const zone = compileZone(obj.zone, p);
  if (fallback === undefined) return undefined;
  return {
    source: structuredClone(obj) as TrafficRule,
    subsets,
    routes,
    sticky,
    fallback,
    zone,
  };
}

const REST: CompiledFallback = { kind: "rest" };
const FAIL: CompiledFallback = { kind: "fail" };

function compileSubsets(raw: unknown, p: ProblemList): Map<string, CompiledSubset> {
  const subsets = new Map<string, CompiledSubset>();
  if (raw === undefined) return subsets;
  const obj = objectAt(raw, "subsets", p);
  if (obj === undefined) return subsets;
  const names = Object.keys(obj);
  if (names.length > MAX_SUBSETS) p.add("subsets", `at most ${MAX_SUBSETS} subsets, got ${names.length}`);
  for (const name of names) {
    const path = fieldPath("subsets", name);
    if (!NAME.test(name)) p.add(path, "a subset name is 1–63 letters, digits, '_', '.' or '-', starting with a letter or digit");
    const def = objectAt(obj[name], path, p);
    if (def === undefined) continue;
    knownKeys(def, path, ["labels"], p);
    const labelsPath = fieldPath(path, "labels");
    const labels = objectAt(def.labels, labelsPath, p);
    if (labels === undefined) continue;
    const list: { key: string; values: string[] }[] = [];
    for (const [key, value] of Object.entries(labels)) {
      const at = fieldPath(labelsPath, key);
      if (key === "") p.add(at, "a label key must not be empty");
      const values = Array.isArray(value) ? value : [value];
      if (values.length === 0) p.add(at, "a list of label values must not be empty");
      if (!values.every((v): v is string => typeof v === "string")) {
        p.add(at, `must be a string or a list of strings, got ${describeValue(value)}`);
        continue;
      }
      list.push({ key, values });
    }
    if (list.length === 0) p.add(labelsPath, "needs at least one label (a subset of every instance is no subset)");
    subsets.set(name, { name, labels: list });
  }
  return subsets;
}

function compileRoute(raw: unknown, index: number, subsets: ReadonlyMap<string, CompiledSubset>, ruleFallback: CompiledFallback | undefined, p: ProblemList): CompiledRoute | undefined {
  const path = fieldPath("routes", index);
  const obj = objectAt(raw, path, p);
  if (obj === undefined) return undefined;
  knownKeys(obj, path, ["name", "match", "to", "fallback"], p);
  let name = path;
  if (obj.name !== undefined) {
    if (typeof obj.name !== "string" || obj.name.length === 0 || obj.name.length > 100) p.add(fieldPath(path, "name"), `must be a string of 1–100 characters, got ${describeValue(obj.name)}`);
    else name = obj.name;
  }
  let method: Matcher | undefined;
  let headers: [string, Matcher][] = [];
  let attributes: [string, Matcher][] = [];
  let percent: number | undefined;
  if (obj.match !== undefined) {
    const matchPath = fieldPath(path, "match");
    const match = objectAt(obj.match, matchPath, p);
    if (match !== undefined) {
      knownKeys(match, matchPath, ["method", "headers", "attributes", "percent"], p);
      if (match.method !== undefined) method = compileStringMatch(match.method, fieldPath(matchPath, "method"), p, true);
      headers = compileNamedMatches(match.headers, fieldPath(matchPath, "headers"), p, true);
      attributes = compileNamedMatches(match.attributes, fieldPath(matchPath, "attributes"), p, false);
      if (match.percent !== undefined) {
        const at = fieldPath(matchPath, "percent");
        if (typeof match.percent !== "number" || !Number.isFinite(match.percent) || match.percent < 0 || match.percent > 100) {
          p.add(at, `must be a number from 0 to 100, got ${describeValue(match.percent)}`);
        } else percent = match.percent / 100;
      }
    }
  }
  const targets = compileTargets(obj.to, fieldPath(path, "to"), subsets, p);
  const fallback = obj.fallback === undefined ? ruleFallback : compileFallback(obj.fallback, fieldPath(path, "fallback"), subsets, p);
  if (targets === undefined || fallback === undefined) return undefined;
  return { name, index, method, headers, attributes, percent, targets, fallback };
}

function compileTargets(raw: unknown, path: string, subsets: ReadonlyMap<string, CompiledSubset>, p: ProblemList): CompiledTarget[] | undefined {
  if (!Array.isArray(raw)) {
    p.add(path, raw === undefined ? "is required: a list of { subset, weight }" : `must be a list of { subset, weight }, got ${describeValue(raw)}`);
    return undefined;
  }
  if (raw.length === 0 || raw.length > MAX_TARGETS) {
    p.add(path, `needs 1 to ${MAX_TARGETS} targets, got ${raw.length}`);
    return undefined;
  }
  const seen = new Set<string>();
  const parsed: { subset: string; weight: number }[] = [];
  let ok = true;
  raw.forEach((item, i) => {
    const at = fieldPath(path, i);
    const obj = objectAt(item, at, p);
    if (obj === undefined) return void (ok = false);
    knownKeys(obj, at, ["subset", "weight"], p);
    const subset = obj.subset;
    if (typeof subset !== "string") {
      p.add(fieldPath(at, "subset"), `must name a subset, got ${describeValue(subset)}`);
      return void (ok = false);
    }
    if (!subsets.has(subset)) {
      const known = [...subsets.keys()];
      p.add(fieldPath(at, "subset"), `no subset "${subset}" is defined (${known.length === 0 ? "the rule defines none" : `defined: ${known.join(", ")}`})`);
      ok = false;
    }
    if (seen.has(subset)) p.add(fieldPath(at, "subset"), `"${subset}" is listed twice in this route`);
    seen.add(subset);
    const weight = obj.weight ?? 1;
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 1_000_000) {
      p.add(fieldPath(at, "weight"), `must be an integer from 0 to 1000000, got ${describeValue(weight)}`);
      return void (ok = false);
    }
    parsed.push({ subset, weight });
  });
  if (!ok) return undefined;
  const total = parsed.reduce((sum, t) => sum + t.weight, 0);
  if (total === 0) {
    p.add(path, "the weights add up to 0: at least one target needs a weight above 0");
    return undefined;
  }
  let cumulative = 0;
  return parsed.map((t) => {
    cumulative += t.weight;
    return { subset: t.subset, weight: t.weight, upper: cumulative === total ? 1 : cumulative / total };
  });
}

function compileFallback(raw: unknown, path: string, subsets: ReadonlyMap<string, CompiledSubset>, p: ProblemList): CompiledFallback | undefined {
  if (raw === "rest") return REST;
  if (raw === "fail") return FAIL;
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>;
    knownKeys(obj, path, ["subset"], p);
    if (typeof obj.subset === "string" && subsets.has(obj.subset)) return { kind: "subset", subset: obj.subset };
    p.add(fieldPath(path, "subset"), `must name a defined subset, got ${describeValue(obj.subset)}`);
    return undefined;
  }
  p.add(path, `must be "rest", "fail" or { subset: <name> }, got ${describeValue(raw as FallbackPolicy)}`);
  return undefined;
}

function compileNamedMatches(raw: unknown, path: string, p: ProblemList, header: boolean): [string, Matcher][] {
  if (raw === undefined) return [];
  const obj = objectAt(raw, path, p);
  if (obj === undefined) return [];
  const out: [string, Matcher][] = [];
  for (const [name, value] of Object.entries(obj)) {
    const at = fieldPath(path, name);
    if (header && !HEADER.test(name)) {
      p.add(at, "a header name is lower-case letters, digits and - _ . (gRPC metadata keys are lower-case)");
      continue;
    }
    if (!header && name.length === 0) {
      p.add(at, "an attribute name must not be empty");
      continue;
    }
    const matcher = compileStringMatch(value, at, p, false);
    if (matcher) out.push([name, matcher]);
  }
  return out;
}

/** A {@link StringMatch} as a function; `method` treats an exact value without `/` as a bare method name. */
function compileStringMatch(raw: unknown, path: string, p: ProblemList, method: boolean): Matcher | undefined {
  let kind: "exact" | "prefix" | "regex";
  let value: unknown;
  if (typeof raw === "string") {
    kind = "exact";
    value = raw;
  } else {
    const obj = objectAt(raw, path, p);
    if (obj === undefined) return undefined;
    const keys = Object.keys(obj);
    if (keys.length !== 1 || !["exact", "prefix", "regex"].includes(keys[0])) {
      p.add(path, `must be a string or an object with exactly one of exact, prefix, regex; got keys ${JSON.stringify(keys)}`);
      return undefined;
    }
    kind = keys[0] as typeof kind;
    value = obj[kind];
  }
  const at = typeof raw === "string" ? path : fieldPath(path, kind);
  if (typeof value !== "string") {
    p.add(at, `must be a string, got ${describeValue(value)}`);
    return undefined;
  }
  switch (kind) {
    case "exact":
      if (method && !value.includes("/")) return (m) => m === value || m.endsWith(`/${value}`);
      return (v) => v === value;
    case "prefix":
      return (v) => v.startsWith(value);
    case "regex": {
      if (value.length > MAX_REGEX_LENGTH) {
        p.add(at, `a regular expression of at most ${MAX_REGEX_LENGTH} characters, got ${value.length}`);
        return undefined;
      }
      let re: RegExp;
      try {
        // The whole value must match (as Envoy's safe_regex): `v2` does not match `v20`.
        re = new RegExp(`^(?:${value})$`);
      } catch (err) {
        p.add(at, `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, "")}`);
        return undefined;
      }
      return (v) => re.test(v);
    }
  }
}

function compileSticky(raw: unknown, p: ProblemList): CompiledRule["sticky"] {
  if (raw === undefined) return { header: undefined, attribute: undefined };
  const obj = objectAt(raw, "sticky", p);
  if (obj === undefined) return { header: undefined, attribute: undefined };
  knownKeys(obj, "sticky", ["header", "attribute"], p);
  let header: string | undefined;
  let attribute: string | undefined;
  if (obj.header !== undefined) {
    if (typeof obj.header !== "string" || !HEADER.test(obj.header)) p.add("sticky.header", `must be a lower-case header name, got ${describeValue(obj.header)}`);
    else header = obj.header;
  }
  if (obj.attribute !== undefined) {
    if (typeof obj.attribute !== "string" || obj.attribute.length === 0) p.add("sticky.attribute", `must be an attribute name, got ${describeValue(obj.attribute)}`);
    else attribute = obj.attribute;
  }
  if (obj.header === undefined && obj.attribute === undefined) p.add("sticky", "names a header or an attribute (or leave sticky out)");
  return { header, attribute };
}

function compileZone(raw: unknown, p: ProblemList): CompiledZonePreference | undefined {
  if (raw === undefined) return undefined;
  const obj = objectAt(raw, "zone", p);
  if (obj === undefined) return undefined;
  knownKeys(obj, "zone", ["prefer", "minReady", "minShare"], p);
  if (typeof obj.prefer !== "boolean") p.add("zone.prefer", `must be true or false, got ${describeValue(obj.prefer)}`);
  const minReady = obj.minReady ?? 1;
  if (typeof minReady !== "number" || !Number.isInteger(minReady) || minReady < 1) p.add("zone.minReady", `must be an integer ≥ 1, got ${describeValue(minReady)}`);
  const minShare = obj.minShare ?? 0;
  if (typeof minShare !== "number" || !(minShare >= 0 && minShare <= 1)) p.add("zone.minShare", `must be a number from 0 to 1, got ${describeValue(minShare)}`);
  return obj.prefer === true ? { minReady: minReady as number, minShare: minShare as number } : undefined;
}

function objectAt(value: unknown, path: string, p: ProblemList): Record<string, unknown> | undefined {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  p.add(path, `must be an object, got ${value === undefined ? "nothing" : describeValue(value)}`);
  return undefined;
}

function knownKeys(obj: Record<string, unknown>, path: string, allowed: readonly string[], p: ProblemList): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) p.add(fieldPath(path, key), `unknown field (expected one of ${allowed.join(", ")})`);
  }
}
