import { validateTrafficRule } from "../runtime/balancing";
import type { GatewayPolicy, PolicyIssue } from "./policy";
import { PolicyValidationError } from "./policy";
import { RETRYABLE_CODES } from "./retry";

/**
 * Checks a policy document field by field; unknown keys are errors (a typo
 * such as `ratelimit` must not silently switch a limit off).
 */

type Check = (value: unknown, path: string, issues: PolicyIssue[]) => void;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function object(fields: Record<string, Check>): Check {
  return (value, path, issues) => {
    if (!isObject(value)) return void issues.push({ path, message: "must be an object" });
    for (const [key, v] of Object.entries(value)) {
      const check = fields[key];
      const at = path === "" ? key : `${path}.${key}`;
      if (!check) issues.push({ path: at, message: `unknown field (known: ${Object.keys(fields).join(", ")})` });
      else if (v !== undefined) check(v, at, issues);
    }
  };
}

function record(inner: Check, keyPattern: RegExp, keyHint: string): Check {
  return (value, path, issues) => {
    if (!isObject(value)) return void issues.push({ path, message: "must be an object" });
    for (const [key, v] of Object.entries(value)) {
      const at = `${path}["${key}"]`;
      if (!keyPattern.test(key)) issues.push({ path: at, message: `key must be ${keyHint}` });
      inner(v, at, issues);
    }
  };
}

const oneOf = (...allowed: string[]): Check => (v, path, issues) => {
  if (typeof v !== "string" || !allowed.includes(v)) issues.push({ path, message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}` });
};
const bool: Check = (v, path, issues) => void (typeof v !== "boolean" && issues.push({ path, message: "must be true or false" }));
const str: Check = (v, path, issues) => void ((typeof v !== "string" || v === "") && issues.push({ path, message: "must be a non-empty string" }));
const num = (min: number, max: number, integer = false): Check => (v, path, issues) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    issues.push({ path, message: `must be ${integer ? "an integer" : "a number"} from ${min} to ${max}` });
  }
};
const strings = (pattern?: RegExp, hint?: string): Check => (v, path, issues) => {
  if (!Array.isArray(v)) return void issues.push({ path, message: "must be a list of strings" });
  v.forEach((s, i) => {
    if (typeof s !== "string" || s === "" || (pattern && !pattern.test(s))) issues.push({ path: `${path}[${i}]`, message: hint ?? "must be a non-empty string" });
  });
};
const HEADER = /^[a-z0-9][a-z0-9-]*$/;
const limitKey: Check = (v, path, issues) => {
  if (typeof v !== "string" || !/^(ip|api-key|route|claim:[A-Za-z0-9_.-]+|header:[a-z0-9-]+)$/.test(v)) {
    issues.push({ path, message: 'must be "ip", "api-key", "route", "claim:<name>" or "header:<lower-case name>"' });
  }
};

const DAY_MS = 86_400_000;

const routePolicy = object({
  auth: oneOf("none", "jwt", "api-key", "jwt-or-api-key"),
  scopes: strings(),
  roles: strings(),
  forwardToken: bool,
  rateLimit: object({
    key: limitKey,
    local: object({ ratePerSecond: num(0.001, 1e9), burst: num(1, 1e9, true) }),
    cluster: object({ limit: num(1, 1e9, true), windowSeconds: num(1, 86_400, true), burst: num(1, 1e9, true), onRedisDown: oneOf("open", "closed") }),
  }),
  timeoutMs: num(1, DAY_MS, true),
  maxTimeoutMs: num(1, DAY_MS, true),
  forwardHeaders: strings(HEADER, "must be a lower-case header name"),
  unknownQueryParams: oneOf("ignore", "reject"),
  cors: object({
    allowOrigins: strings(/^(\*|https?:\/\/[^/\s]+)$/, 'must be "*" or an origin such as https://app.example'),
    allowHeaders: strings(HEADER, "must be a lower-case header name"),
    exposeHeaders: strings(HEADER, "must be a lower-case header name"),
    allowCredentials: bool,
    maxAgeSeconds: num(0, 86_400, true),
  }),
  maxBodyBytes: num(1, 1 << 30, true),
  emitDefaults: bool,
  useProtoNames: bool,
  retry: (v, path, issues) => {
    object({
      attempts: num(2, 10, true),
      codes: (c, at, out) => {
        if (!Array.isArray(c) || c.length === 0) return void out.push({ path: at, message: "must be a non-empty list of gRPC code names" });
        c.forEach((x, i) => void ((typeof x !== "string" || !(RETRYABLE_CODES as readonly string[]).includes(x)) && out.push({ path: `${at}[${i}]`, message: `must be one of ${RETRYABLE_CODES.join(", ")} (DEADLINE_EXCEEDED and CANCELLED are never retried)` })));
      },
      backoffMs: num(1, 10_000, true),
      maxBackoffMs: num(1, 60_000, true),
    })(v, path, issues);
    if (!isObject(v)) return;
    if (v.attempts === undefined) issues.push({ path: `${path}.attempts`, message: "is required (tries in all, 2 to 10)" });
    if (typeof v.backoffMs === "number" && typeof v.maxBackoffMs === "number" && v.maxBackoffMs < v.backoffMs) issues.push({ path: `${path}.maxBackoffMs`, message: "must be at least backoffMs" });
  },
});

const NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

const policyCheck = object({
  defaults: routePolicy,
  services: record(routePolicy, NAME, "a full service name such as pkg.v1.Service"),
  methods: record(routePolicy, NAME, "a full method name such as pkg.v1.Service.Method"),
  jwt: object({
    jwksFile: str,
    jwksUrl: (v, path, issues) => void ((typeof v !== "string" || !/^https?:\/\//.test(v)) && issues.push({ path, message: "must be an http(s) URL" })),
    secret: (v, path, issues) => void ((typeof v !== "string" || v.length < 16) && issues.push({ path, message: "must be a string of at least 16 characters" })),
    issuer: str,
    audience: str,
    leewaySeconds: num(0, 3600, true),
    cacheSeconds: num(0, 3600, true),
    cacheEntries: num(0, 1_000_000, true),
    jwksCacheSeconds: num(1, 86_400, true),
    jwksStaleSeconds: num(0, 604_800, true),
    cookie: str,
    queryParam: str,
    claimsToMetadata: record((v, path, issues) => void ((typeof v !== "string" || !HEADER.test(v)) && issues.push({ path, message: "must be a lower-case metadata key" })), /^[A-Za-z0-9_.:-]+$/, "a claim name"),
  }),
  traffic: record((v, path, issues) => {
    for (const p of validateTrafficRule(v)) issues.push({ path: p.path ? `${path}.${p.path}` : path, message: p.message });
  }, /^[A-Za-z0-9][A-Za-z0-9._-]*$/, "a registry service name (as in etcd:///<name>)"),
  apiKeys: object({
    header: (v, path, issues) => void ((typeof v !== "string" || !HEADER.test(v)) && issues.push({ path, message: "must be a lower-case header name" })),
    queryParam: str,
    idMetadata: (v, path, issues) => void ((typeof v !== "string" || !HEADER.test(v)) && issues.push({ path, message: "must be a lower-case metadata key" })),
  }),
});

/** Returns the problems of `value` as a policy (empty when it is one). */
export function checkPolicy(value: unknown): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  policyCheck(value, "", issues);
  if (isObject(value)) {
    const jwt = value.jwt;
    if (isObject(jwt) && [jwt.jwksFile, jwt.jwksUrl, jwt.secret].filter((x) => x !== undefined).length !== 1) {
      issues.push({ path: "jwt", message: "give exactly one of jwksFile, jwksUrl or secret" });
    }
    const usesJwt = JSON.stringify(value).match(/"auth":"(jwt|jwt-or-api-key)"/);
    if (usesJwt && !isObject(jwt)) issues.push({ path: "jwt", message: 'a route uses auth "jwt" but no jwt settings are given' });
  }
  return issues;
}

/** `value` as a policy, or {@link PolicyValidationError} listing every problem. */
export function validatePolicy(value: unknown): GatewayPolicy {
  const issues = checkPolicy(value);
  if (issues.length > 0) throw new PolicyValidationError(issues);
  return value as GatewayPolicy;
}
