import type { IncomingMessage } from "node:http";
import type { JWTPayload } from "jose";
import { Status } from "../runtime/errors";
import { checkApiKey, type ApiKeyRecord } from "./api-keys";
import { rolesOf, scopesOf, unauthenticated, type JwtVerifier } from "./auth-jwt";
import { GatewayError } from "./http-errors";
import type { GatewayPolicy, RoutePolicy } from "./policy";

/**
 * Who is calling, per the route's `auth` mode: a JWT, an API key, either, or
 * nobody. Missing or invalid credentials are 401 (with `WWW-Authenticate`);
 * valid ones without a required scope or role are 403. What the upstream
 * learns is chosen here: configured claims and the key id as metadata, never
 * the raw token unless the route forwards it.
 */

export interface AuthContext {
  readonly policy: () => GatewayPolicy;
  /** The verifier for the current `jwt` settings (undefined when none are set). */
  readonly jwt: () => JwtVerifier | undefined;
  readonly lookupKey: (id: string) => ApiKeyRecord | undefined;
}

export interface Identity {
  readonly claims: JWTPayload | undefined;
  readonly apiKeyId: string | undefined;
  /** Metadata for the upstream derived from the credentials. */
  readonly metadata: Map<string, string>;
}

/** No credentials asked for. */
export const ANONYMOUS: Identity = { claims: undefined, apiKeyId: undefined, metadata: new Map() };

/** Whether the route asks for credentials at all (when not, {@link authenticate} answers {@link ANONYMOUS}). */
export function requiresCredentials(route: RoutePolicy): boolean {
  return route.auth !== undefined && route.auth !== "none";
}

export async function authenticate(ctx: AuthContext, route: RoutePolicy, req: IncomingMessage, query: readonly [string, string][]): Promise<Identity> {
  const mode = route.auth ?? "none";
  if (mode === "none") return ANONYMOUS;
  const policy = ctx.policy();
  const verifier = ctx.jwt();
  const keySettings = policy.apiKeys ?? {};
  const keyHeader = keySettings.header ?? "x-api-key";

  if (mode === "api-key" || mode === "jwt-or-api-key") {
    const header = req.headers[keyHeader];
    const key = typeof header === "string" ? header : keySettings.queryParam ? query.find(([k]) => k === keySettings.queryParam)?.[1] : undefined;
    if (key !== undefined) {
      const record = checkApiKey(key, ctx.lookupKey);
      if (!record) throw unauthenticated("invalid API key", "ApiKey");
      requireGrants(route, record.scopes, []);
      return { claims: undefined, apiKeyId: record.id, metadata: new Map([[keySettings.idMetadata ?? "x-api-key-id", record.id]]) };
    }
    if (mode === "api-key") throw unauthenticated(`missing API key (header ${keyHeader})`, "ApiKey");
  }
  if (!verifier) throw new GatewayError(Status.INTERNAL, "route requires a JWT but the gateway has no jwt settings", 500);
  const token = verifier.tokenOf(req, query);
  if (token === undefined || token === "") throw unauthenticated("missing bearer token");
  const claims = await verifier.verify(token);
  requireGrants(route, scopesOf(claims), rolesOf(claims));
  const metadata = new Map<string, string>();
  for (const [claim, key] of Object.entries(policy.jwt?.claimsToMetadata ?? {})) {
    const v = claims[claim];
    if (v === undefined || v === null) continue;
    metadata.set(key, typeof v === "string" ? v : JSON.stringify(v));
  }
  return { claims, apiKeyId: undefined, metadata };
}

function requireGrants(route: RoutePolicy, scopes: readonly string[], roles: readonly string[]): void {
  const missing = (route.scopes ?? []).filter((s) => !scopes.includes(s));
  if (missing.length > 0) throw new GatewayError(Status.PERMISSION_DENIED, `missing scope ${missing.join(", ")}`, 403);
  if (route.roles && route.roles.length > 0 && !route.roles.some((r) => roles.includes(r))) {
    throw new GatewayError(Status.PERMISSION_DENIED, `requires one of the roles ${route.roles.join(", ")}`, 403);
  }
}
