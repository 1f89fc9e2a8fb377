/**
 * Traffic rules: one model for subsets by instance labels, weighted splits sticky by a request
 * key, matches on request attributes, subset fallback and zone preference. Pure (no etcd, no
 * grpc-js): the client's LB policies evaluate it per pick, and an HTTP gateway evaluates the very
 * same rule object per request. (The grpc-js policies in this folder register themselves when
 * `protomesh` or `protomesh/registry/etcd/register` is imported; they are not exported here so
 * that this entry point stays free of grpc-js.)
 *
 * A gateway evaluates the same rule object a client does:
 *
 * ```ts
 * import { compileTrafficRule, TrafficPlan } from "protomesh/balancing";
 * const rule = compileTrafficRule(JSON.parse(text));           // throws TrafficRuleError naming the field
 * const plan = new TrafficPlan(rule, instances, { zone: "eu-1" }); // once per instance-set change
 * const d = plan.decide({ method: "/shop.Cart/Add", header: (h) => first(req.headers[h]), attribute: (a) => claims[a] });
 * if (d.status === "ok") forwardTo(d.instances); else reply503(d.message);
 * ```
 */

// The rule model (pure).
export type {
  TrafficRule,
  Route,
  RouteMatch,
  RouteTarget,
  StringMatch,
  SubsetDefinition,
  StickySource,
  FallbackPolicy,
  ZonePreference,
} from "./traffic-rule";
export { TrafficRuleError, type RuleProblem } from "./rule-errors";
export {
  compileTrafficRule,
  validateTrafficRule,
  MAX_ROUTES,
  MAX_SUBSETS,
  MAX_TARGETS,
  type CompiledRule,
  type CompiledRoute,
  type CompiledSubset,
  type CompiledTarget,
  type CompiledFallback,
  type CompiledZonePreference,
  type Matcher,
} from "./rule-compile";
export {
  chooseRoute,
  evaluate,
  inSubset,
  labelOf,
  stickyKeyOf,
  TrafficPlan,
  type Decision,
  type LabeledInstance,
  type PlanOptions,
  type RequestAttributes,
  type Resolution,
  type RouteChoice,
} from "./rule-evaluate";
export { canaryRule, blueGreenRule, STABLE, CANARY, type CanaryRuleOptions, type BlueGreenRuleOptions, type Labels } from "./rule-builders";
