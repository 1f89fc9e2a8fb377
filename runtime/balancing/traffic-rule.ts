/**
 * The traffic rule of one service, as plain data (JSON or YAML): which instances a call may go
 * to, by their registry labels, by weight, and by attributes of the request. The same object is
 * evaluated by the client's LB policy on each pick and by an HTTP gateway on each request.
 *
 * ```yaml
 * subsets:
 *   stable: { labels: { version: v1 } }
 *   canary: { labels: { version: v2 } }
 * sticky: { header: x-user }          # the same user stays on the same side
 * routes:
 *   - name: testers                   # internal testers always get v2
 *     match: { headers: { x-tester: { exact: "yes" } } }
 *     to: [{ subset: canary }]
 *   - to: [{ subset: stable, weight: 95 }, { subset: canary, weight: 5 }]
 * fallback: rest                      # a subset with nothing READY: use the other instances
 * zone: { prefer: true }              # the caller's zone first, spill over when it has none READY
 * ```
 */

/** How a string attribute is compared: exactly one of the three. A bare string means `exact`. */
export type StringMatch = string | { exact: string } | { prefix: string } | { regex: string };

/** Conditions on a request; all given ones must hold. */
export interface RouteMatch {
  /**
   * The gRPC method: matched against the full path `/package.Service/Method`; an `exact`
   * value without a `/` is compared with the method name alone (`SayHello`).
   */
  method?: StringMatch;
  /** Request headers (gRPC metadata, HTTP headers), by lower-case name. A missing header never matches. */
  headers?: Record<string, StringMatch>;
  /** Named request attributes the caller supplies (a cookie, a JWT claim in a gateway). */
  attributes?: Record<string, StringMatch>;
  /**
   * Only this percentage (0–100) of request keys: decided by a hash of the sticky key, so a key
   * keeps its answer while the rule is unchanged; calls without a key are drawn at random.
   */
  percent?: number;
}

/** One destination of a route and its share. */
export interface RouteTarget {
  subset: string;
  /** Relative weight, an integer ≥ 0 (default 1). A weight of 0 keeps the target listed but sends nothing. */
  weight?: number;
}

/** What happens when the chosen subset has no READY instance. */
export type FallbackPolicy =
  /** Use the service's other instances (Dubbo's `force=false`). The default. */
  | "rest"
  /** Fail the call with UNAVAILABLE (Dubbo's `force=true`). */
  | "fail"
  /** Use this subset instead (for example `stable`), then fail if it has none either. */
  | { subset: string };

/** A request condition and where matching requests go. Routes are tried in order; the first match wins. */
export interface Route {
  /** Shown in decisions, logs and the CLI. */
  name?: string;
  /** Absent: matches every request. */
  match?: RouteMatch;
  /** At least one target; with several, the weights split the matching requests. */
  to: RouteTarget[];
  /** Overrides the rule's `fallback` for this route. */
  fallback?: FallbackPolicy;
}

/** A named group of instances, chosen by registry labels. */
export interface SubsetDefinition {
  /**
   * Every label must match. Keys `version` and `zone` read the registration's fields, `id` its
   * id, any other key its `metadata`. A value may be a list: any of them matches.
   */
  labels: Record<string, string | string[]>;
}

/** Where the sticky key of a request comes from, when the caller does not pass one. */
export interface StickySource {
  header?: string;
  attribute?: string;
}

/** Preference for instances in the caller's own zone. */
export interface ZonePreference {
  prefer: boolean;
  /**
   * Spill over to other zones when fewer than this many instances of the chosen set are READY in
   * the caller's zone (default 1).
   */
  minReady?: number;
  /**
   * Spill over when the caller's zone holds less than this share (0–1) of the chosen set's READY
   * instances (default 0): a zone that lost most of its instances would otherwise take a whole
   * region's calls.
   */
  minShare?: number;
}

/** The whole rule of one service. */
export interface TrafficRule {
  /** Free text for operators. */
  description?: string;
  subsets?: Record<string, SubsetDefinition>;
  /** Tried in order; a request that matches none goes to every instance of the service. */
  routes?: Route[];
  sticky?: StickySource;
  /** Default `rest`. */
  fallback?: FallbackPolicy;
  zone?: ZonePreference;
}
