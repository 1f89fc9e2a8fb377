/**
 * Rules for the common release shapes, as plain data. A release writes one of these per step
 * (canary 5 → 25 → 50 → 100, a blue-green switch, an abort back to stable); the result is an
 * ordinary {@link TrafficRule} that validates and can be stored, diffed and edited by hand.
 */
import type { FallbackPolicy, RouteMatch, StickySource, TrafficRule } from "./traffic-rule";

/** Labels selecting a group of instances, e.g. `{ version: "v2" }`. */
export type Labels = Record<string, string | string[]>;

export interface CanaryRuleOptions {
  /** Labels of the current release. */
  stable: Labels;
  /** Labels of the new release. */
  canary: Labels;
  /** Percentage of keys (0–100) sent to the canary; 0 is an abort, 100 a full promotion. */
  canaryWeight: number;
  /** Where the sticky key comes from, so a user stays on one side (recommended). */
  sticky?: StickySource;
  /** Requests matching this always go to the canary (internal testers). */
  canaryMatch?: RouteMatch;
  /** When the chosen side has nothing READY: default `rest` (the other side serves). */
  fallback?: FallbackPolicy;
}

/** Names of the subsets that {@link canaryRule} and {@link blueGreenRule} define. */
export const STABLE = "stable";
export const CANARY = "canary";

/**
 * Stable and canary subsets by label, split by weight. The canary is the last target, so raising
 * its weight only moves keys onto it: users who saw the canary at 5 % still see it at 25 %.
 *
 * @example
 *   canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 5, sticky: { header: "x-user" } })
 */
export function canaryRule(options: CanaryRuleOptions): TrafficRule {
  const weight = options.canaryWeight;
  if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new RangeError(`canaryWeight must be an integer from 0 to 100, got ${String(weight)}`);
  }
  const rule: TrafficRule = {
    subsets: { [STABLE]: { labels: { ...options.stable } }, [CANARY]: { labels: { ...options.canary } } },
    routes: [],
    fallback: options.fallback ?? "rest",
  };
  if (options.sticky !== undefined) rule.sticky = { ...options.sticky };
  if (options.canaryMatch !== undefined) rule.routes!.push({ name: "canary-match", match: options.canaryMatch, to: [{ subset: CANARY }] });
  rule.routes!.push({
    name: "split",
    to: [
      { subset: STABLE, weight: 100 - weight },
      { subset: CANARY, weight },
    ],
  });
  return rule;
}

export interface BlueGreenRuleOptions {
  blue: Labels;
  green: Labels;
  /** The side that takes every call. */
  active: "blue" | "green";
  /** Default `fail`: a blue-green switch must not send calls to the side it left. */
  fallback?: FallbackPolicy;
}

/**
 * Two labelled sides, every call to the active one. Switching is writing the rule again with the
 * other `active`.
 */
export function blueGreenRule(options: BlueGreenRuleOptions): TrafficRule {
  if (options.active !== "blue" && options.active !== "green") throw new RangeError(`active must be "blue" or "green", got ${String(options.active)}`);
  return {
    subsets: { blue: { labels: { ...options.blue } }, green: { labels: { ...options.green } } },
    routes: [{ name: options.active, to: [{ subset: options.active }] }],
    fallback: options.fallback ?? "fail",
  };
}
