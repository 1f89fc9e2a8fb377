/**
 * The traffic rule a release writes at each point: built with the traffic model's own builders,
 * so what a release writes is an ordinary rule anyone can read, diff or edit.
 */
import { blueGreenRule, canaryRule, STABLE } from "../runtime/balancing/rule-builders";
import type { TrafficRule } from "../runtime/balancing/traffic-rule";
import type { ReleaseSpec } from "./spec";

/** The rule while the canary (green) takes `weight` percent. */
export function ruleAt(spec: ReleaseSpec, weight: number): TrafficRule {
  if (spec.strategy === "blueGreen") {
    const rule = blueGreenRule({ blue: spec.stable, green: spec.canary, active: weight >= 100 ? "green" : "blue" });
    if (spec.testers && weight < 100) rule.routes!.unshift({ name: "testers", match: spec.testers, to: [{ subset: "green" }] });
    rule.description = `blue-green release of ${spec.service}: ${weight >= 100 ? "green" : "blue"} active`;
    return rule;
  }
  const rule = canaryRule({ stable: spec.stable, canary: spec.canary, canaryWeight: weight, sticky: spec.sticky, canaryMatch: spec.testers });
  rule.description = `canary release of ${spec.service}: ${weight} % canary`;
  return rule;
}

/**
 * The rule once a canary release succeeded: the canary's labels are the stable subset. (A
 * blue-green release keeps its switched rule so `undo` can flip back while blue still runs.)
 */
export function promotedRule(spec: ReleaseSpec): TrafficRule {
  if (spec.strategy === "blueGreen") return ruleAt(spec, 100);
  return {
    description: `${spec.service}: ${Object.entries(spec.canary).map(([k, v]) => `${k}=${String(v)}`).join(",")} promoted`,
    subsets: { [STABLE]: { labels: { ...spec.canary } } },
    routes: [{ name: STABLE, to: [{ subset: STABLE }] }],
    fallback: "rest",
  };
}

/** The rule after an abort: every call on stable (blue). */
export function abortedRule(spec: ReleaseSpec): TrafficRule {
  const rule = ruleAt({ ...spec, testers: undefined }, 0);
  rule.description = `${spec.service}: release aborted, every call on ${spec.strategy === "blueGreen" ? "blue" : "stable"}`;
  return rule;
}
