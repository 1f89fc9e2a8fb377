/**
 * The gateway's edge policy: one JSON document, stored in etcd (versioned by
 * the config store), checked field by field before it is written and again
 * before a gateway applies it. Settings are given as `defaults`, per service
 * (`services["pkg.Service"]`) and per method (`methods["pkg.Service.Method"]`);
 * the most specific one wins, key by key.
 *
 * ```json
 * { "defaults": { "auth": "none", "rateLimit": { "local": { "ratePerSecond": 100, "burst": 200 } } },
 *   "methods": { "examples.gateway.v1.HttpGreeter.SayHello": { "auth": "jwt", "scopes": ["greet"] } },
 *   "jwt": { "jwksFile": "/etc/keys.json", "issuer": "https://id.example", "claimsToMetadata": { "sub": "x-user-id" } } }
 * ```
 */

import type { TrafficRule } from "../runtime/balancing";

export type AuthMode = "none" | "jwt" | "api-key" | "jwt-or-api-key";

/** Who a rate limit counts: the client address, the API key, a JWT claim or a header. */
export type LimitKey = "ip" | "api-key" | "route" | `claim:${string}` | `header:${string}`;

export interface LocalLimit {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size (default: ratePerSecond). */
  readonly burst?: number;
}

export interface ClusterLimit {
  /** Requests admitted per window across every gateway. */
  readonly limit: number;
  /** Window length in seconds (default 1). */
  readonly windowSeconds?: number;
  /** Requests admitted at once above the smooth rate (default limit/10, at least 1). */
  readonly burst?: number;
  /** Redis unreachable: "open" falls back to the local limit (default), "closed" refuses (503). */
  readonly onRedisDown?: "open" | "closed";
}

export interface RateLimitPolicy {
  readonly key?: LimitKey;
  readonly local?: LocalLimit;
  readonly cluster?: ClusterLimit;
}

export interface CorsPolicy {
  /** Exact origins, or "*" for any. */
  readonly allowOrigins: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly allowCredentials?: boolean;
  readonly maxAgeSeconds?: number;
}

/**
 * Retries of an upstream call, for methods that may be repeated (see
 * `retry.ts`: idempotent per the proto, or an HTTP GET route). Never once the
 * answer has started, never past the request's deadline.
 */
export interface RetryPolicy {
  /** Tries in all, the first included (2 to 10). */
  readonly attempts: number;
  /** gRPC codes that are tried again (default ["UNAVAILABLE"]). */
  readonly codes?: readonly ("UNAVAILABLE" | "RESOURCE_EXHAUSTED" | "ABORTED" | "INTERNAL" | "UNKNOWN")[];
  /** Longest wait before the first retry, ms (default 25); each retry waits between half of it and all of it, and it doubles. */
  readonly backoffMs?: number;
  /** Cap on that wait, ms (default 1000). */
  readonly maxBackoffMs?: number;
}

/** Settings that apply to one route (after merging defaults, service and method). */
export interface RoutePolicy {
  readonly auth?: AuthMode;
  /** Every one of these must appear in the token's `scope`/`scp` claim (403 otherwise). */
  readonly scopes?: readonly string[];
  /** At least one of these must appear in the token's `roles` claim (403 otherwise). */
  readonly roles?: readonly string[];
  /** Pass the raw Authorization header upstream (default false). */
  readonly forwardToken?: boolean;
  readonly rateLimit?: RateLimitPolicy;
  /** Deadline when the client gives none (ms, default 30000). */
  readonly timeoutMs?: number;
  /** Cap on a client-given deadline (ms, default 60000). */
  readonly maxTimeoutMs?: number;
  /** Request headers passed on as metadata (lower-case). */
  readonly forwardHeaders?: readonly string[];
  /** Query parameters that name no field: "ignore" (default) or "reject" (400 naming it). */
  readonly unknownQueryParams?: "ignore" | "reject";
  readonly cors?: CorsPolicy;
  /** Largest request body in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number;
  /** Write fields holding default values in responses (default false). */
  readonly emitDefaults?: boolean;
  /** Name response fields as the proto does (`served_by`) rather than by their JSON names (`servedBy`, the default). */
  readonly useProtoNames?: boolean;
  /** Retry idempotent upstream calls (off by default). */
  readonly retry?: RetryPolicy;
}

export interface JwtSettings {
  /** A JWKS document on disk; re-read when it changes. */
  readonly jwksFile?: string;
  /** A JWKS URL; fetched, cached and refetched on an unknown key id. */
  readonly jwksUrl?: string;
  /** Shared secret for HS256/384/512 (UTF-8). */
  readonly secret?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Allowed clock skew for exp/nbf, seconds (default 30). */
  readonly leewaySeconds?: number;
  /**
   * How long a token that verified is reused without checking its signature again, seconds
   * (default 60, never past the token's `exp`; 0 checks every request). With a JWKS URL, a key
   * removed at the issuer stops its tokens within this time after the gateway refetches the set.
   */
  readonly cacheSeconds?: number;
  /** How many verified tokens are kept (default 10,000; the oldest leave first). */
  readonly cacheEntries?: number;
  /** With `jwksUrl`: how long a fetched key set is used before it is fetched again, seconds (default 600). */
  readonly jwksCacheSeconds?: number;
  /**
   * With `jwksUrl`: while the URL cannot be fetched, the last key set fetched keeps being used for
   * this long after it was due to be fetched again, seconds (default 3600; 0: not at all), so a
   * key server's outage does not refuse every token. After it, requests are answered 503.
   */
  readonly jwksStaleSeconds?: number;
  /** Also look for the token in this cookie (after the Authorization header). */
  readonly cookie?: string;
  /** Also look for the token in this query parameter (last). */
  readonly queryParam?: string;
  /** Claim → metadata key passed upstream (`{ "sub": "x-user-id" }`). */
  readonly claimsToMetadata?: Readonly<Record<string, string>>;
}

export interface ApiKeySettings {
  /** Header carrying the key (default `x-api-key`). */
  readonly header?: string;
  /** Also accept the key in this query parameter. */
  readonly queryParam?: string;
  /** Metadata key that receives the key's id (default `x-api-key-id`). */
  readonly idMetadata?: string;
}

export interface GatewayPolicy {
  /** Traffic rules (canary, A/B, blue-green) by registry service name, in the shared rule model of `protomesh/balancing`. */
  readonly traffic?: Readonly<Record<string, TrafficRule>>;
  readonly defaults?: RoutePolicy;
  readonly services?: Readonly<Record<string, RoutePolicy>>;
  readonly methods?: Readonly<Record<string, RoutePolicy>>;
  readonly jwt?: JwtSettings;
  readonly apiKeys?: ApiKeySettings;
}

/** A problem in a policy document: where and what. */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
}

export class PolicyValidationError extends Error {
  override readonly name = "PolicyValidationError";
  constructor(readonly issues: readonly PolicyIssue[]) {
    super(`invalid gateway policy: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`);
  }
}

// Merged settings per policy document and method. A policy is replaced, never changed in
// place, so its merges stay valid for as long as it is the one in force.
// Keyed by service, then method: a lookup builds no `service.method` string.
const merged = new WeakMap<GatewayPolicy, Map<string, Map<string, RoutePolicy>>>();

/** The settings for one method: defaults, then its service's, then its own, key by key. */
export function routePolicy(policy: GatewayPolicy, service: string, method: string): RoutePolicy {
  let byService = merged.get(policy);
  if (!byService) merged.set(policy, (byService = new Map()));
  let byMethod = byService.get(service);
  if (!byMethod) byService.set(service, (byMethod = new Map()));
  let route = byMethod.get(method);
  if (!route) byMethod.set(method, (route = { ...policy.defaults, ...policy.services?.[service], ...policy.methods?.[`${service}.${method}`] }));
  return route;
}
