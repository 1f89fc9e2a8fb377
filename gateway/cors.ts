import type { IncomingMessage, ServerResponse } from "node:http";
import { Status } from "../runtime/errors";
import { GatewayError } from "./http-errors";
import type { CorsPolicy, RoutePolicy } from "./policy";
import type { Routable, Router } from "./router";

/**
 * CORS per route. The gateway answers preflights itself (the upstream never
 * sees an OPTIONS), from the policy of the route the real request would hit.
 */

function allowedOrigin(cors: CorsPolicy | undefined, origin: string): string | undefined {
  if (!cors) return undefined;
  if (cors.allowOrigins.includes(origin)) return origin;
  // With credentials the spec forbids "*": echo the origin instead.
  if (cors.allowOrigins.includes("*")) return cors.allowCredentials ? origin : "*";
  return undefined;
}

/** Headers for an actual (non-preflight) cross-origin request; nothing when the origin is not allowed. */
export function applyCors(cors: CorsPolicy | undefined, req: IncomingMessage, res: ServerResponse): void {
  const origin = allowedOrigin(cors, String(req.headers.origin));
  if (!origin || !cors) return;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("vary", "Origin");
  if (cors.allowCredentials) res.setHeader("access-control-allow-credentials", "true");
  const expose = ["x-request-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", ...(cors.exposeHeaders ?? [])];
  res.setHeader("access-control-expose-headers", expose.join(", "));
}

/** Answers a preflight: 204 with the allowances, or an error (404 no route, 403 origin or method refused). */
export function preflight<R extends Routable>(router: Router<R>, path: string, req: IncomingMessage, res: ServerResponse, policyOf: (r: R) => RoutePolicy): number {
  const wanted = String(req.headers["access-control-request-method"]).toUpperCase();
  const match = router.match(wanted, path);
  if (match.kind !== "found") throw new GatewayError(Status.NOT_FOUND, `no route for ${wanted} ${path}`, 404);
  const cors = policyOf(match.route).cors;
  const origin = allowedOrigin(cors, String(req.headers.origin));
  if (!origin || !cors) throw new GatewayError(Status.PERMISSION_DENIED, `origin ${String(req.headers.origin)} is not allowed on ${path}`, 403);
  const asked = String(req.headers["access-control-request-headers"] ?? "").split(",").map((h) => h.trim().toLowerCase()).filter((h) => h !== "");
  const allowed = new Set(["content-type", "authorization", "x-request-id", "x-request-timeout", "grpc-timeout", ...(cors.allowHeaders ?? [])]);
  const refused = asked.filter((h) => !allowed.has(h));
  if (refused.length > 0) throw new GatewayError(Status.PERMISSION_DENIED, `request header ${refused.join(", ")} is not allowed on ${path}`, 403);
  res.writeHead(204, {
    "access-control-allow-origin": origin,
    "access-control-allow-methods": wanted,
    "access-control-allow-headers": [...allowed].join(", "),
    "access-control-max-age": String(cors.maxAgeSeconds ?? 600),
    ...(cors.allowCredentials ? { "access-control-allow-credentials": "true" } : {}),
    vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
  });
  res.end();
  return 204;
}
