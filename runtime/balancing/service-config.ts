/**
 * Turns the client's `balancer` and `retry` options into a grpc-js service config, so
 * balancing and retries run inside the channel rather than around it.
 */
import * as grpc from "@grpc/grpc-js";
import type { MethodDefinition, ServiceDefinition } from "../definition";
import { DEFAULT_BOUNDED_LOAD } from "./hash-ring";
import { CONSISTENT_HASH_POLICY, DEFAULT_HASH_HEADER, parseConsistentHashSettings } from "./lb-consistent-hash";
import { LEAST_REQUEST_POLICY, parseLeastRequestSettings } from "./lb-least-request";
import { P2C_POLICY, parseP2cSettings } from "./lb-p2c";
import { ROUND_ROBIN_POLICY } from "./lb-round-robin";

/** Options of the `consistent_hash` balancer. */
export interface ConsistentHashOption {
  /** Request header carrying the key (default `x-protomesh-hash-key`); a call's `hashKey` sets it. */
  header?: string;
  /** Virtual nodes per member of mean weight (default 1,000). */
  vnodes?: number;
  /** Bounded-load factor `c` > 1, or `true` for 1.25; off when absent. */
  boundedLoad?: number | true;
}

/** Options of the `p2c` balancer (peak-EWMA power of two choices); all in milliseconds. */
export interface P2cOption {
  /** Decay time constant τ of the latency estimate (default 10,000). */
  decayMs?: number;
  /** Estimate of a new endpoint when no peer has one (default 30). */
  defaultRttMs?: number;
  /** Latency a failed call counts as, at least (default 250). */
  failurePenaltyMs?: number;
  /** An endpoint not picked for this long, with nothing pending, is picked to refresh its estimate (default 1,000). */
  forceAfterMs?: number;
}

/** Options of the `least_request` balancer (Envoy's LEAST_REQUEST: the fewest outstanding calls of `choiceCount` random endpoints). */
export interface LeastRequestOption {
  /** Endpoints drawn per pick, 2 to 100 (default 2). */
  choiceCount?: number;
  /** Exponent of the outstanding count when registry weights differ: `weight / (outstanding + 1) ^ bias` (default 1). */
  activeRequestBias?: number;
}

/**
 * How a client spreads calls over the target's endpoints. Every choice but `pick_first`
 * balances inside the subset the service's traffic rule allows for each call.
 *
 * @example
 *   { balancer: "round_robin" }
 *   { balancer: "p2c" }
 *   { balancer: "least_request" }
 *   { balancer: { consistentHash: { header: "x-user", boundedLoad: true } } }
 */
export type BalancerOption =
  | "pick_first"
  | "round_robin"
  | "p2c"
  | "least_request"
  | { p2c: P2cOption }
  | { leastRequest: LeastRequestOption }
  | { consistentHash: ConsistentHashOption };

/**
 * grpc-js's outlier detection around the balancer: an endpoint failing at least `threshold` % of
 * at least `requestVolume` calls in an `intervalMs` is ejected for `baseEjectionTimeMs` (longer
 * each time). Every non-OK status counts as a failure there, application errors included: turn it
 * on for services whose methods rarely fail by design.
 */
export interface OutlierDetectionOption {
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionTimeMs?: number;
  /** Most endpoints ejected at once, in percent (default 50). */
  maxEjectionPercent?: number;
  /** Failure percentage that ejects (default 50). */
  threshold?: number;
  /** Calls an endpoint needs in an interval to be judged (default 20). */
  requestVolume?: number;
  /** Endpoints with enough calls needed before anyone is judged (default 2). */
  minimumHosts?: number;
}

export const OUTLIER_DETECTION_DEFAULTS: Required<OutlierDetectionOption> = {
  intervalMs: 1000,
  baseEjectionTimeMs: 5000,
  maxEjectionTimeMs: 60_000,
  maxEjectionPercent: 50,
  threshold: 50,
  requestVolume: 20,
  minimumHosts: 2,
};

/** Retry policy, applied by grpc-js to the chosen methods. */
export interface RetryOption {
  /** Attempts in total, the first included: 2 to 5 (default 3; grpc-js caps at 5). */
  maxAttempts?: number;
  /** Backoff before the first retry, in milliseconds (default 100); actual delays are jittered. */
  initialBackoffMs?: number;
  /** Upper bound of the backoff, in milliseconds (default 1,000). */
  maxBackoffMs?: number;
  /** Growth of the backoff per attempt (default 2). */
  backoffMultiplier?: number;
  /** Codes worth retrying, as numbers or names (default `["UNAVAILABLE"]`). */
  retryableStatusCodes?: (number | string)[];
  /**
   * `"idempotent"` (default): methods whose proto declares an `idempotency_level`;
   * or a list of method names (`sayHello` or `SayHello`).
   */
  methods?: "idempotent" | string[];
}

/** Retry settings used where a {@link RetryOption} leaves a field out. */
export const RETRY_DEFAULTS = {
  maxAttempts: 3,
  initialBackoffMs: 100,
  maxBackoffMs: 1000,
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE"],
  methods: "idempotent",
} as const satisfies Required<RetryOption>;

/** grpc-js refuses retry policies with more attempts than this. */
const MAX_ATTEMPTS = 5;

/** A method-config `name` entry. */
export interface MethodConfigName {
  service: string;
  method: string;
}

/** A retry policy as the gRPC service-config JSON spells it. */
export interface RetryPolicyJson {
  maxAttempts: number;
  initialBackoff: string;
  maxBackoff: string;
  backoffMultiplier: number;
  retryableStatusCodes: string[];
}

/** The subset of the gRPC service config that protomesh produces. */
export interface ServiceConfigJson {
  loadBalancingConfig: Record<string, object>[];
  methodConfig: { name: MethodConfigName[]; retryPolicy: RetryPolicyJson }[];
}

/**
 * Builds the grpc-js service config (pass it JSON-encoded as the `grpc.service_config`
 * channel option) for `definition`. Invalid options throw a `TypeError` or `RangeError`
 * naming the option. `retry: true` means the defaults; retries also need the channel
 * option `grpc.enable_retries` left on.
 *
 * @example
 *   const config = buildServiceConfig(GreeterDefinition, { balancer: "round_robin", retry: { maxAttempts: 4 } });
 */
export function buildServiceConfig(
  definition: ServiceDefinition,
  options: { balancer?: BalancerOption; retry?: RetryOption | boolean; outlierDetection?: OutlierDetectionOption | boolean } = {},
): ServiceConfigJson {
  if (typeof definition !== "object" || definition === null || typeof definition.typeName !== "string" || typeof definition.methods !== "object") {
    throw new TypeError("buildServiceConfig: definition must be a generated ServiceDefinition");
  }
  const config: ServiceConfigJson = { loadBalancingConfig: [buildLoadBalancingConfig(options)], methodConfig: [] };
  const retry = options.retry === true ? {} : options.retry === false ? undefined : options.retry;
  if (retry !== undefined) {
    const { policy, methods } = parseRetry(retry, definition);
    if (methods.length > 0) {
      config.methodConfig.push({ name: methods.map((m) => methodConfigName(definition, m)), retryPolicy: policy });
    }
  }
  return config;
}

/**
 * The `loadBalancingConfig` entry for `balancer`, wrapped in outlier detection when it is on
 * (`true`: the defaults); the part of {@link buildServiceConfig} that needs no service, for
 * channels that carry many (a gateway's). Invalid options throw as there.
 *
 * @example
 *   buildLoadBalancingConfig({ balancer: "p2c", outlierDetection: { threshold: 60 } })
 */
export function buildLoadBalancingConfig(options: { balancer?: BalancerOption; outlierDetection?: OutlierDetectionOption | boolean } = {}): Record<string, object> {
  return withOutlierDetection(loadBalancingConfigOf(options.balancer), options.outlierDetection);
}

/** `lb` (a `loadBalancingConfig` entry) inside outlier detection when `option` turns it on; `lb` itself otherwise. */
export function withOutlierDetection(lb: Record<string, object>, option: OutlierDetectionOption | boolean | undefined): Record<string, object> {
  if (option === undefined || option === false) return lb;
  if ("pick_first" in lb) throw new RangeError("outlierDetection needs a balancer that spreads calls; pick_first has nothing to eject to");
  return outlierDetectionOf(option === true ? {} : option, lb);
}

/** The header a client sets for a call's `hashKey`: the consistent-hash header, or the default for other balancers. */
export function hashHeaderOf(balancer: BalancerOption | undefined): string {
  if (typeof balancer === "object" && balancer !== null && "consistentHash" in balancer) {
    return parseConsistentHashSettings(consistentHashJson(balancer.consistentHash), "balancer.consistentHash").header;
  }
  return DEFAULT_HASH_HEADER;
}

function loadBalancingConfigOf(balancer: BalancerOption | undefined): Record<string, object> {
  if (balancer === undefined || balancer === "round_robin") return { [ROUND_ROBIN_POLICY]: {} };
  if (balancer === "pick_first") return { pick_first: {} };
  if (balancer === "p2c") return { [P2C_POLICY]: {} };
  if (balancer === "least_request") return { [LEAST_REQUEST_POLICY]: {} };
  if (typeof balancer === "object" && balancer !== null && !Array.isArray(balancer)) {
    const keys = Object.keys(balancer);
    if (keys.length === 1 && keys[0] === "p2c") return { [P2C_POLICY]: { ...parseP2cSettings((balancer as { p2c: P2cOption }).p2c ?? {}, "balancer.p2c") } };
    if (keys.length === 1 && keys[0] === "leastRequest") {
      return { [LEAST_REQUEST_POLICY]: { ...parseLeastRequestSettings((balancer as { leastRequest: LeastRequestOption }).leastRequest ?? {}, "balancer.leastRequest") } };
    }
    if (keys.length === 1 && keys[0] === "consistentHash") {
      const settings = parseConsistentHashSettings(consistentHashJson((balancer as { consistentHash: ConsistentHashOption }).consistentHash), "balancer.consistentHash");
      const json: Record<string, unknown> = { header: settings.header, vnodes: settings.vnodes };
      if (settings.boundedLoad !== undefined) json.boundedLoad = settings.boundedLoad;
      return { [CONSISTENT_HASH_POLICY]: json };
    }
    throw new TypeError(`balancer must be "pick_first", "round_robin", "p2c", "least_request", { p2c: {…} }, { leastRequest: {…} } or { consistentHash: {…} }, got an object with keys ${JSON.stringify(keys)}`);
  }
  throw new RangeError(`balancer must be "pick_first", "round_robin", "p2c", "least_request", { p2c: {…} }, { leastRequest: {…} } or { consistentHash: {…} }, got ${JSON.stringify(balancer)}`);
}

function outlierDetectionOf(option: OutlierDetectionOption, child: Record<string, object>): Record<string, object> {
  if (typeof option !== "object" || option === null || Array.isArray(option)) throw new TypeError(`outlierDetection must be an object or a boolean, got ${typeof option}`);
  rejectUnknownKeys(option, Object.keys(OUTLIER_DETECTION_DEFAULTS), "outlierDetection");
  const o = { ...OUTLIER_DETECTION_DEFAULTS, ...option };
  for (const key of ["intervalMs", "baseEjectionTimeMs", "maxEjectionTimeMs"] as const) checkMs(o[key], `outlierDetection.${key}`);
  for (const key of ["maxEjectionPercent", "threshold"] as const) {
    if (typeof o[key] !== "number" || !(o[key] >= 0 && o[key] <= 100)) throw new RangeError(`outlierDetection.${key} must be a percentage from 0 to 100, got ${JSON.stringify(o[key])}`);
  }
  for (const key of ["requestVolume", "minimumHosts"] as const) {
    if (typeof o[key] !== "number" || !Number.isInteger(o[key]) || o[key] < 1) throw new RangeError(`outlierDetection.${key} must be an integer ≥ 1, got ${JSON.stringify(o[key])}`);
  }
  const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) });
  return {
    outlier_detection: {
      interval: duration(o.intervalMs),
      base_ejection_time: duration(o.baseEjectionTimeMs),
      max_ejection_time: duration(o.maxEjectionTimeMs),
      max_ejection_percent: o.maxEjectionPercent,
      failure_percentage_ejection: { threshold: o.threshold, enforcement_percentage: 100, minimum_hosts: o.minimumHosts, request_volume: o.requestVolume },
      child_policy: [child],
    },
  };
}

/** Checks field names and resolves `boundedLoad: true` before the shared validation. */
function consistentHashJson(option: ConsistentHashOption | undefined): unknown {
  if (option === undefined || option === null) return {};
  if (typeof option !== "object" || Array.isArray(option)) throw new TypeError(`balancer.consistentHash must be an object, got ${typeof option}`);
  rejectUnknownKeys(option, ["header", "vnodes", "boundedLoad"], "balancer.consistentHash");
  return option.boundedLoad === true ? { ...option, boundedLoad: DEFAULT_BOUNDED_LOAD } : option;
}

function parseRetry(retry: RetryOption, definition: ServiceDefinition): { policy: RetryPolicyJson; methods: MethodDefinition[] } {
  if (typeof retry !== "object" || retry === null || Array.isArray(retry)) throw new TypeError(`retry must be an object or a boolean, got ${typeof retry}`);
  rejectUnknownKeys(retry, Object.keys(RETRY_DEFAULTS), "retry");

  const maxAttempts = retry.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  if (typeof maxAttempts !== "number") throw new TypeError(`retry.maxAttempts must be a number, got ${typeof maxAttempts}`);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 2 || maxAttempts > MAX_ATTEMPTS) {
    throw new RangeError(`retry.maxAttempts must be an integer from 2 to ${MAX_ATTEMPTS} (use retry: false for none), got ${maxAttempts}`);
  }
  const initialBackoffMs = checkMs(retry.initialBackoffMs ?? RETRY_DEFAULTS.initialBackoffMs, "retry.initialBackoffMs");
  const maxBackoffMs = checkMs(retry.maxBackoffMs ?? Math.max(RETRY_DEFAULTS.maxBackoffMs, initialBackoffMs), "retry.maxBackoffMs");
  if (maxBackoffMs < initialBackoffMs) {
    throw new RangeError(`retry.maxBackoffMs (${maxBackoffMs}) must not be less than retry.initialBackoffMs (${initialBackoffMs})`);
  }
  const backoffMultiplier = retry.backoffMultiplier ?? RETRY_DEFAULTS.backoffMultiplier;
  if (typeof backoffMultiplier !== "number") throw new TypeError(`retry.backoffMultiplier must be a number, got ${typeof backoffMultiplier}`);
  if (!Number.isFinite(backoffMultiplier) || backoffMultiplier <= 0) {
    throw new RangeError(`retry.backoffMultiplier must be a finite number greater than 0, got ${backoffMultiplier}`);
  }
  const policy: RetryPolicyJson = {
    maxAttempts,
    initialBackoff: durationOf(initialBackoffMs),
    maxBackoff: durationOf(maxBackoffMs),
    backoffMultiplier,
    retryableStatusCodes: statusNames(retry.retryableStatusCodes ?? [...RETRY_DEFAULTS.retryableStatusCodes]),
  };
  return { policy, methods: selectMethods(retry.methods ?? RETRY_DEFAULTS.methods, definition) };
}

function checkMs(value: unknown, name: string): number {
  if (typeof value !== "number") throw new TypeError(`${name} must be a number of milliseconds, got ${typeof value}`);
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`${name} must be at least 1 (milliseconds), got ${value}`);
  return value;
}

/** Milliseconds as a service-config duration (`"0.1s"`): seconds with at most 9 decimals. */
function durationOf(ms: number): string {
  return `${(ms / 1000).toFixed(9).replace(/\.?0+$/, "")}s`;
}

function statusNames(codes: unknown): string[] {
  if (!Array.isArray(codes)) throw new TypeError(`retry.retryableStatusCodes must be an array, got ${typeof codes}`);
  if (codes.length === 0) throw new RangeError("retry.retryableStatusCodes must name at least one status code");
  const names = new Set<string>();
  for (const code of codes) {
    let name: string | undefined;
    if (typeof code === "number") {
      name = Number.isInteger(code) ? grpc.status[code] : undefined;
    } else if (typeof code === "string") {
      const upper = code.trim().toUpperCase();
      name = upper in grpc.status && Number.isNaN(Number(upper)) ? upper : undefined;
    } else {
      throw new TypeError(`retry.retryableStatusCodes entries must be status numbers or names, got ${typeof code}`);
    }
    if (name === undefined) throw new RangeError(`retry.retryableStatusCodes: ${JSON.stringify(code)} is not a gRPC status code`);
    if (name === "OK") throw new RangeError("retry.retryableStatusCodes: OK is not a failure and cannot be retried");
    names.add(name);
  }
  return [...names];
}

function selectMethods(selection: unknown, definition: ServiceDefinition): MethodDefinition[] {
  const all = Object.values(definition.methods);
  if (selection === "idempotent") return all.filter((m) => m.idempotency !== undefined);
  if (!Array.isArray(selection)) throw new TypeError(`retry.methods must be "idempotent" or an array of method names, got ${JSON.stringify(selection)}`);
  const chosen = new Set<MethodDefinition>();
  for (const name of selection) {
    if (typeof name !== "string") throw new TypeError(`retry.methods entries must be method names, got ${typeof name}`);
    const method = all.find((m) => m.localName === name || m.name === name);
    if (method === undefined) {
      throw new RangeError(`retry.methods: ${definition.typeName} has no method "${name}" (it has ${all.map((m) => m.localName).join(", ")})`);
    }
    chosen.add(method);
  }
  return [...chosen];
}

/** Service and method as grpc-js matches them: the two halves of the wire path. */
function methodConfigName(definition: ServiceDefinition, method: MethodDefinition): MethodConfigName {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(method.path);
  return match ? { service: match[1], method: match[2] } : { service: definition.typeName, method: method.name };
}

function rejectUnknownKeys(obj: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new TypeError(`${where}: unknown option "${key}" (expected one of ${allowed.join(", ")})`);
  }
}
