/**
 * Evaluating a compiled traffic rule: which route a request takes and which subset it names
 * ({@link chooseRoute}, per call, no allocation beyond the answer), and which instances that
 * leaves after subset fallback and zone preference ({@link TrafficPlan}, cached per instance
 * set, so a picker pays for the partition once per membership or state change, not per call).
 */
import { hashString } from "./hash-ring";
import type { CompiledFallback, CompiledRoute, CompiledRule, CompiledSubset } from "./rule-compile";

/**
 * What the rule may look at in a request. A gRPC client passes the call's method and a getter
 * over its metadata; an HTTP gateway passes the gRPC method it routes to, a getter over the HTTP
 * headers, and anything else (a cookie, a JWT claim) as attributes.
 */
export interface RequestAttributes {
  /** Full gRPC method path, `/package.Service/Method`. */
  readonly method?: string;
  /** A request header (metadata) by lower-case name; the first value when there are several. */
  readonly header?: (name: string) => string | undefined;
  /** A named attribute the caller derives itself (`cookie.user`, `jwt.sub`…). */
  readonly attribute?: (name: string) => string | undefined;
  /** The sticky key; overrides the rule's `sticky` source. */
  readonly hashKey?: string;
}

/** The route a request took and the subset it names. */
export interface RouteChoice {
  /** Undefined when no route matched: the request may go to any instance. */
  readonly route: CompiledRoute | undefined;
  /** Undefined when no route matched. */
  readonly subset: string | undefined;
}

/** Seeds of the two independent hashes of a key: its side of a split, and its share for `percent`. */
const SPLIT_SEED = 0x7a3f19c1;
const PERCENT_SEED = 0x1b873593;
const TWO_TO_32 = 4294967296;

const NO_ROUTE: RouteChoice = { route: undefined, subset: undefined };

/**
 * Picks the route and subset for a request. With a key (the request's `hashKey`, else the rule's
 * sticky header or attribute) the answer depends only on the key and the rule: a key stays on
 * its side while the rule is unchanged, and raising the last target's weight only moves keys
 * onto it (a canary that grows from 5 % to 25 % keeps its first 5 %). Without a key, `random`
 * decides.
 */
export function chooseRoute(rule: CompiledRule, request: RequestAttributes, random: () => number = Math.random): RouteChoice {
  const routes = rule.routes;
  let key: string | undefined | null = null; // null: not looked up yet
  for (let r = 0; r < routes.length; r++) {
    const route = routes[r];
    if (!matches(route, request)) continue;
    if (route.percent !== undefined) {
      if (key === null) key = keyOf(rule, request);
      const share = key === undefined ? random() : hashString(key, PERCENT_SEED) / TWO_TO_32;
      if (share >= route.percent) continue;
    }
    const targets = route.targets;
    if (targets.length === 1) return { route, subset: targets[0].subset };
    if (key === null) key = keyOf(rule, request);
    const point = key === undefined ? random() : hashString(key, SPLIT_SEED) / TWO_TO_32;
    for (let t = 0; t < targets.length; t++) {
      if (point < targets[t].upper) return { route, subset: targets[t].subset };
    }
    return { route, subset: targets[targets.length - 1].subset };
  }
  return NO_ROUTE;
}

/** The request's sticky key: its own `hashKey`, else the rule's sticky header, else attribute. */
export function stickyKeyOf(rule: CompiledRule, request: RequestAttributes): string | undefined {
  return keyOf(rule, request);
}

function keyOf(rule: CompiledRule, request: RequestAttributes): string | undefined {
  if (request.hashKey !== undefined) return request.hashKey;
  const { header, attribute } = rule.sticky;
  if (header !== undefined) {
    const value = request.header?.(header);
    if (value !== undefined) return value;
  }
  if (attribute !== undefined) return request.attribute?.(attribute);
  return undefined;
}

function matches(route: CompiledRoute, request: RequestAttributes): boolean {
  if (route.method !== undefined && (request.method === undefined || !route.method(request.method))) return false;
  const headers = route.headers;
  for (let i = 0; i < headers.length; i++) {
    const value = request.header?.(headers[i][0]);
    if (value === undefined || !headers[i][1](value)) return false;
  }
  const attributes = route.attributes;
  for (let i = 0; i < attributes.length; i++) {
    const value = request.attribute?.(attributes[i][0]);
    if (value === undefined || !attributes[i][1](value)) return false;
  }
  return true;
}

/** What the rule reads of an instance: the registry's `InstanceInfo` fits. */
export interface LabeledInstance {
  readonly id?: string;
  readonly version?: string;
  readonly zone?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** An instance's label: `version`, `zone` and `id` from the registration, anything else from its metadata. */
export function labelOf(instance: LabeledInstance, key: string): string | undefined {
  if (key === "version") return instance.version || instance.metadata?.version;
  if (key === "zone") return instance.zone || instance.metadata?.zone;
  if (key === "id") return instance.id;
  return instance.metadata !== undefined && Object.hasOwn(instance.metadata, key) ? instance.metadata[key] : undefined;
}

/** Whether `instance` belongs to `subset` (every label matches one of its values). */
export function inSubset(subset: CompiledSubset, instance: LabeledInstance): boolean {
  for (const { key, values } of subset.labels) {
    const value = labelOf(instance, key);
    if (value === undefined || !values.includes(value)) return false;
  }
  return true;
}

/** How a {@link TrafficPlan} sees instances: connection states and the caller's zone. */
export interface PlanOptions<T> {
  /** Whether an instance can take a call now (default: every instance can). */
  readonly isReady?: (instance: T) => boolean;
  /** Whether an instance that is not ready is still trying to connect (default: none is). */
  readonly isConnecting?: (instance: T) => boolean;
  /** The caller's zone, for the rule's zone preference. */
  readonly zone?: string;
}

/**
 * Where a subset's calls go: `ok` with the READY instances to balance over; `wait` while the
 * instances that could serve are still connecting; `unavailable` with a message when none can.
 */
export interface Resolution<T> {
  readonly status: "ok" | "wait" | "unavailable";
  readonly instances: readonly T[];
  /** Which group serves: the subset's name, `rest` (every instance outside it), or `*` (the whole service). */
  readonly served: string;
  /** True when the asked-for subset had nothing READY and another group serves. */
  readonly fellBack: boolean;
  /** True when zone preference narrowed `instances` to the caller's zone. */
  readonly zoneLocal: boolean;
  readonly message: string | undefined;
}

/** A route choice together with where it leads. */
export interface Decision<T> extends Resolution<T> {
  /** The route's name (or `routes[i]`), undefined when none matched. */
  readonly route: string | undefined;
  /** The subset the route named, undefined when none matched. */
  readonly subset: string | undefined;
}

/**
 * A rule applied to one instance set. Built once per membership or connection-state change;
 * {@link TrafficPlan.decide} then costs a route choice and a map lookup per call.
 */
export class TrafficPlan<T extends LabeledInstance> {
  private readonly cache = new Map<string, Resolution<T>>();
  private readonly members = new Map<string, T[]>();
  private readonly isReady: (instance: T) => boolean;
  private readonly isConnecting: (instance: T) => boolean;

  constructor(
    readonly rule: CompiledRule,
    readonly instances: readonly T[],
    private readonly options: PlanOptions<T> = {},
  ) {
    this.isReady = options.isReady ?? (() => true);
    this.isConnecting = options.isConnecting ?? (() => false);
  }

  /** The route, subset and instances for one request. */
  decide(request: RequestAttributes, random?: () => number): Decision<T> {
    const choice = chooseRoute(this.rule, request, random);
    const resolution = this.resolve(choice.subset, choice.route?.fallback ?? this.rule.fallback);
    return { ...resolution, route: choice.route?.name, subset: choice.subset };
  }

  /** Where a subset's calls go under a fallback policy (cached). `undefined`: the whole service. */
  resolve(subset: string | undefined, fallback: CompiledFallback): Resolution<T> {
    const cacheKey = subset === undefined ? "*" : `${subset}\u0000${fallback.kind === "subset" ? `=${fallback.subset}` : fallback.kind}`;
    let found = this.cache.get(cacheKey);
    if (found === undefined) {
      found = this.compute(subset, fallback);
      this.cache.set(cacheKey, found);
    }
    return found;
  }

  /** Instances of a subset, READY or not. */
  membersOf(subset: string): readonly T[] {
    let list = this.members.get(subset);
    if (list === undefined) {
      const def = this.rule.subsets.get(subset);
      list = def === undefined ? [] : this.instances.filter((i) => inSubset(def, i));
      this.members.set(subset, list);
    }
    return list;
  }

  private compute(subset: string | undefined, fallback: CompiledFallback): Resolution<T> {
    if (subset === undefined) return this.serve(this.instances, "*", false, "no instance of the service is READY");
    const members = this.membersOf(subset);
    const own = this.serve(members, subset, false, `subset "${subset}" has no READY instance`);
    if (own.status === "ok") return own;
    switch (fallback.kind) {
      case "fail":
        return own.status === "wait" ? own : { ...own, message: `${own.message} and its fallback is "fail"` };
      case "rest": {
        const inside = new Set(members);
        const rest = this.instances.filter((i) => !inside.has(i));
        return this.serve(rest, "rest", true, `subset "${subset}" has no READY instance, nor has the rest of the service`);
      }
      case "subset": {
        if (fallback.subset === subset) return own;
        const other = this.resolve(fallback.subset, { kind: "fail" });
        return other.status === "ok" ? { ...other, fellBack: true } : { ...other, message: `subset "${subset}" has no READY instance, nor has its fallback subset "${fallback.subset}"` };
      }
    }
  }

  private serve(candidates: readonly T[], served: string, fellBack: boolean, emptyMessage: string): Resolution<T> {
    const ready = candidates.filter((i) => this.isReady(i));
    if (ready.length === 0) {
      const waiting = candidates.some((i) => this.isConnecting(i));
      return { status: waiting ? "wait" : "unavailable", instances: ready, served, fellBack, zoneLocal: false, message: waiting ? undefined : emptyMessage };
    }
    const zone = this.rule.zone;
    const caller = this.options.zone;
    if (zone !== undefined && caller !== undefined && caller !== "") {
      const local = ready.filter((i) => i.zone === caller);
      if (local.length >= zone.minReady && local.length >= zone.minShare * ready.length && local.length < ready.length) {
        return { status: "ok", instances: local, served, fellBack, zoneLocal: true, message: undefined };
      }
      if (local.length === ready.length) return { status: "ok", instances: ready, served, fellBack, zoneLocal: true, message: undefined };
    }
    return { status: "ok", instances: ready, served, fellBack, zoneLocal: false, message: undefined };
  }
}

/**
 * One-shot evaluation: the route, subset and instances for `request` over `instances`. For many
 * requests over the same instance set, build a {@link TrafficPlan} once and call `decide`.
 *
 * @example
 *   const d = evaluate(rule, { method: "/shop.Cart/Add", header: (h) => headers[h] }, instances);
 *   if (d.status === "ok") send(d.instances);
 */
export function evaluate<T extends LabeledInstance>(
  rule: CompiledRule,
  request: RequestAttributes,
  instances: readonly T[],
  options: PlanOptions<T> & { random?: () => number } = {},
): Decision<T> {
  return new TrafficPlan(rule, instances, options).decide(request, options.random);
}
