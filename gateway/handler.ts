import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { JsonValue } from "@bufbuild/protobuf";
import { RpcError, Status } from "../runtime/errors";
import type { Logger } from "../runtime/logger";
import { ANONYMOUS, authenticate, requiresCredentials, type AuthContext } from "./authenticate";
import { checkContentType, hasBody, parseJsonBody, parseJsonStream, readBody } from "./body";
import { applyCors, preflight } from "./cors";
import { requestedTimeoutMs, requestMetadata } from "./headers";
import { GatewayError, httpStatusOfError, statusJson, UpstreamFailure } from "./http-errors";
import { endRequestSpan, recordRequest, startRequestSpan, type GatewayMetrics, type RequestSpan } from "./observe";
import { PathError } from "./path-match";
import { routePolicy, type GatewayPolicy, type RoutePolicy } from "./policy";
import { parseQueryString, QueryError } from "./query";
import type { RateLimiter } from "./rate-limit";
import { requestJson } from "./request-message";
import type { BoundRoute, RouteTable } from "./route-table";
import type { TrafficRouter } from "./traffic";
import { callStreaming, callUnary } from "./upstream-call";

/**
 * One HTTP request, start to end: match, CORS, authenticate, rate-limit, read
 * and transcode the body, call the upstream (cancelled if the client goes
 * away), transcode the answer. Every refusal and failure is answered with a
 * `google.rpc.Status` JSON body; nothing thrown escapes to the server.
 */

export interface HandlerDeps {
  readonly table: RouteTable;
  readonly policy: () => GatewayPolicy;
  readonly traffic: TrafficRouter;
  readonly auth: AuthContext;
  readonly limiter: RateLimiter;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Where the access log goes (one line per request), or undefined for none. */
  readonly accessLog: Logger | undefined;
  readonly responseHeaderPrefix: string;
  readonly methodOverride: boolean;
  readonly secure: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_BODY = 1 << 20;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function handleRequest(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const incoming = req.headers["x-request-id"];
  const requestId = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  // Every answer carries `x-request-id`: the unary path writes it in its one `writeHead`, the
  // others set it when they start, and an error answer has it in its own head.
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  let method = req.method ?? "GET";
  const override = req.headers["x-http-method-override"];
  if (deps.methodOverride && method === "POST" && typeof override === "string") method = override.toUpperCase();

  let route: BoundRoute | undefined;
  let rs: RequestSpan | undefined;
  let status = 500;
  let failure: string | undefined;
  try {
    if (method === "OPTIONS" && req.headers.origin !== undefined && req.headers["access-control-request-method"] !== undefined) {
      res.setHeader("x-request-id", requestId);
      status = preflight(deps.table.router, path, req, res, (r) => routePolicy(deps.policy(), r.service, r.method.name));
      return;
    }
    const match = deps.table.router.match(method, path);
    if (match.kind === "not-found") throw new GatewayError(Status.NOT_FOUND, `no route for ${method} ${path}`, 404);
    if (match.kind === "method-not-allowed") throw new GatewayError(Status.UNIMPLEMENTED, `${method} is not allowed on ${path}`, 405, { allow: match.allow.join(", ") });
    route = match.route;
    rs = startRequestSpan(req, method, route.template.source);
    const whole = deps.policy();
    deps.traffic.setRules(whole.traffic);
    const policy = routePolicy(whole, route.service, route.method.name);
    if (req.headers.origin !== undefined) applyCors(policy.cors, req, res);
    const query = q === -1 ? NO_QUERY : parseQueryString(url.slice(q + 1));
    const identity = requiresCredentials(policy) ? await authenticate(deps.auth, policy, req, query) : ANONYMOUS;
    if (policy.rateLimit) {
      const key = limitKeyOf(policy, req, identity.claims, identity.apiKeyId);
      await deps.limiter.admit(`${route.httpMethod} ${route.template.source}`, key, policy.rateLimit, res);
    }
    const md = requestMetadata(req, { allow: allowList(policy), requestId, remoteAddress: req.socket.remoteAddress, secure: deps.secure });
    if (identity.metadata.size > 0) for (const [k, v] of identity.metadata) md.set(k, v);
    const deadline = Date.now() + timeoutOf(req, policy);
    const unary = route.method.methodKind === "unary";
    // The body is awaited here, not inside a helper: no async frames of its own per request.
    const reading = bodyOf(route, req, policy);
    const body = reading === undefined ? undefined : await reading;
    const requests = unary ? unaryRequest(route, match.variables, body, query, policy, whole) : requestsOf(route, match.variables, body, query, policy, whole);
    const client = deps.traffic.direct(route.target) ?? deps.traffic.client(route.target, { req, grpcPath: route.grpcPath, claims: identity.claims, requestId }, (n, v) => res.setHeader(n, v));
    const call = { client, route, policy, res, md, deadline, rs, headerPrefix: deps.responseHeaderPrefix, requestId, logger: deps.logger };
    status = unary ? await callUnary(call, requests as JsonValue) : await callStreaming(call, req, requests as JsonValue[]);
  } catch (err) {
    const e = toRpcError(err, deps.logger, requestId);
    failure = e.rawMessage;
    status = httpStatusOfError(e);
    if (!res.headersSent) sendError(res, e, status, requestId);
    else if (!res.writableEnded) res.end();
  } finally {
    recordRequest(deps.metrics, route ? route.template.source : "unmatched", method, status, (performance.now() - started) / 1000);
    if (rs) endRequestSpan(rs, status, failure);
    if (deps.accessLog) {
      deps.accessLog.info("gateway request", { requestId, method, path, route: route?.template.source, grpc: route?.grpcPath, status, ms: Math.round((performance.now() - started) * 100) / 100, client: req.socket.remoteAddress, ...(failure ? { error: failure } : {}) });
    }
  }
}

const NO_QUERY: [string, string][] = [];
const allowLists = new WeakMap<RoutePolicy, readonly string[]>();

/** Request headers the route forwards (route policies are immutable: computed once each). */
function allowList(policy: RoutePolicy): readonly string[] {
  let list = allowLists.get(policy);
  if (!list) {
    list = policy.forwardToken ? [...(policy.forwardHeaders ?? []), "authorization"] : (policy.forwardHeaders ?? []);
    allowLists.set(policy, list);
  }
  return list;
}

const reservedParams = new WeakMap<GatewayPolicy, ReadonlySet<string>>();

/** Query parameters the gateway consumes itself (API key, JWT), per policy document. */
function reservedOf(policy: GatewayPolicy): ReadonlySet<string> {
  let reserved = reservedParams.get(policy);
  if (!reserved) {
    const names = [policy.apiKeys?.queryParam, policy.jwt?.queryParam].filter((n): n is string => n !== undefined && n !== "");
    reservedParams.set(policy, (reserved = new Set(names)));
  }
  return reserved;
}

function timeoutOf(req: IncomingMessage, policy: RoutePolicy): number {
  const max = policy.maxTimeoutMs ?? DEFAULT_MAX_TIMEOUT_MS;
  const asked = requestedTimeoutMs(req);
  return Math.min(asked ?? policy.timeoutMs ?? DEFAULT_TIMEOUT_MS, max);
}

function limitKeyOf(policy: RoutePolicy, req: IncomingMessage, claims: Record<string, unknown> | undefined, apiKeyId: string | undefined): string {
  const key = policy.rateLimit?.key ?? "ip";
  if (key === "route") return "*";
  if (key === "api-key") return `k:${apiKeyId ?? "-"}`;
  if (key.startsWith("claim:")) return `c:${String(claims?.[key.slice(6)] ?? "-")}`;
  if (key.startsWith("header:")) return `h:${String(req.headers[key.slice(7)] ?? "-")}`;
  return `ip:${req.socket.remoteAddress ?? "-"}`;
}

/** The request body, read (or drained when the route does not read it) and bounded; undefined when there is none. */
function bodyOf(route: BoundRoute, req: IncomingMessage, policy: RoutePolicy): Promise<Buffer | undefined> | undefined {
  if (!hasBody(req)) return undefined;
  if (route.body !== undefined) {
    checkContentType(req);
    return readBody(req, policy.maxBodyBytes ?? DEFAULT_MAX_BODY);
  }
  // A body the route does not read is drained (bounded), so the connection stays usable.
  return readBody(req, policy.maxBodyBytes ?? DEFAULT_MAX_BODY).then(() => undefined);
}

/** The request message of a unary or server-streaming call as JSON. */
function unaryRequest(route: BoundRoute, variables: Map<string, string>, body: Buffer | undefined, query: [string, string][], policy: RoutePolicy, whole: GatewayPolicy): JsonValue {
  return requestJson(route, { variables, query, body: body ? parseJsonBody(body) : undefined }, { registry: route.registry, unknownParams: policy.unknownQueryParams, reserved: reservedOf(whole) });
}

/** The request messages as JSON: one for server streaming, a list for client and bidi streaming. */
function requestsOf(route: BoundRoute, variables: Map<string, string>, body: Buffer | undefined, query: [string, string][], policy: RoutePolicy, whole: GatewayPolicy): JsonValue[] {
  const streaming = route.method.methodKind === "client_streaming" || route.method.methodKind === "bidi_streaming";
  if (!streaming) return [unaryRequest(route, variables, body, query, policy, whole)];
  const options = { registry: route.registry, unknownParams: policy.unknownQueryParams, reserved: reservedOf(whole) };
  return (body ? parseJsonStream(body) : []).map((m) => requestJson(route, { variables, query, body: m }, options));
}

function sendError(res: ServerResponse, e: RpcError, status: number, requestId: string): void {
  const body = JSON.stringify(statusJson(e));
  const headers: Record<string, string | number> = { "x-request-id": requestId, "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  if (e instanceof GatewayError) Object.assign(headers, e.headers);
  res.writeHead(status, headers);
  res.end(body);
}

/** Any failure as an RpcError; unexpected ones are logged with the request id and answered without internals. */
function toRpcError(err: unknown, logger: Logger, requestId: string): RpcError {
  if (err instanceof RpcError) {
    // An upstream failure was logged, with its original text, where it was recognised.
    if (err instanceof UpstreamFailure) return err;
    if (err.code === Status.INTERNAL || err.code === Status.UNKNOWN) logger.warn("gateway: upstream failed", { requestId, err: err.message, cause: String(err.cause ?? "") });
    return err;
  }
  if (err instanceof PathError || err instanceof QueryError) return new GatewayError(Status.INVALID_ARGUMENT, err.message, 400);
  logger.error("gateway: request failed", { requestId, err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return new RpcError(Status.INTERNAL, "internal error");
}
