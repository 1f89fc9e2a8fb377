import { promises as fs } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { Status } from "../runtime/errors";
import { GatewayError } from "./http-errors";
import type { JwtSettings } from "./policy";

/**
 * JWT verification with `jose`: keys from a shared secret (HS*), a local JWKS
 * file (re-read when it changes, so keys rotate without a restart) or a JWKS
 * URL (cached; an unknown `kid` triggers a refetch, rate-limited by jose).
 * `exp`/`nbf` are checked with the configured leeway.
 */

const HS = ["HS256", "HS384", "HS512"];
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

export class JwtVerifier {
  private readonly getKey: JWTVerifyGetKey | Uint8Array;
  private fileKeys: { mtimeMs: number; get: JWTVerifyGetKey } | undefined;
  private fileChecked = 0;

  constructor(private readonly settings: JwtSettings) {
    if (settings.secret !== undefined) this.getKey = new TextEncoder().encode(settings.secret);
    else if (settings.jwksUrl !== undefined) this.getKey = createRemoteJWKSet(new URL(settings.jwksUrl), { cooldownDuration: 5_000, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
    else if (settings.jwksFile !== undefined) this.getKey = (header, token) => this.fromFile(header, token);
    else throw new Error("jwt settings need one of secret, jwksUrl or jwksFile");
  }

  /** The token from the request: Authorization header, then the cookie, then the query parameter. */
  tokenOf(req: IncomingMessage, query: readonly [string, string][]): string | undefined {
    const auth = req.headers.authorization;
    if (typeof auth === "string" && /^bearer /i.test(auth)) return auth.slice(7).trim();
    if (this.settings.cookie && typeof req.headers.cookie === "string") {
      for (const part of req.headers.cookie.split(";")) {
        const eq = part.indexOf("=");
        if (eq !== -1 && part.slice(0, eq).trim() === this.settings.cookie) return decodeURIComponent(part.slice(eq + 1).trim());
      }
    }
    if (this.settings.queryParam) return query.find(([k]) => k === this.settings.queryParam)?.[1];
    return undefined;
  }

  /** Verifies `token`; 401 with a reason on any failure. */
  async verify(token: string): Promise<JWTPayload> {
    try {
      const options = {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: this.settings.leewaySeconds ?? 30,
        algorithms: this.getKey instanceof Uint8Array ? HS : ASYMMETRIC,
      };
      const result = this.getKey instanceof Uint8Array ? await jwtVerify(token, this.getKey, options) : await jwtVerify(token, this.getKey, options);
      return result.payload;
    } catch (err) {
      throw unauthenticated(describe(err));
    }
  }

  private async fromFile(...args: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    const now = Date.now();
    // stat at most once a second: rotation shows up quickly without a syscall per request.
    if (!this.fileKeys || now - this.fileChecked > 1000) {
      this.fileChecked = now;
      const file = this.settings.jwksFile!;
      const stat = await fs.stat(file);
      if (!this.fileKeys || stat.mtimeMs !== this.fileKeys.mtimeMs) {
        const jwks = JSON.parse(await fs.readFile(file, "utf8")) as Parameters<typeof createLocalJWKSet>[0];
        this.fileKeys = { mtimeMs: stat.mtimeMs, get: createLocalJWKSet(jwks) };
      }
    }
    return this.fileKeys.get(...args);
  }
}

function describe(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `token claim ${err.claim} rejected: ${err.reason}`;
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key matches the token";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "bad token signature";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) return "malformed token";
  if (err instanceof joseErrors.JOSEError) return `token rejected (${err.code})`;
  return "token could not be verified";
}

/** 401 with the `WWW-Authenticate` challenge RFC 6750 asks for. */
export function unauthenticated(reason: string, scheme = "Bearer"): GatewayError {
  const challenge = scheme === "Bearer" ? `Bearer realm="protomesh", error="invalid_token", error_description="${reason.replace(/"/g, "'")}"` : `${scheme} realm="protomesh"`;
  return new GatewayError(Status.UNAUTHENTICATED, reason, 401, { "www-authenticate": challenge });
}

/** Scopes of a token: the space-separated `scope` claim or the `scp` list. */
export function scopesOf(payload: JWTPayload): string[] {
  const scope = payload.scope ?? payload.scp;
  if (typeof scope === "string") return scope.split(" ").filter((s) => s !== "");
  return Array.isArray(scope) ? scope.filter((s): s is string => typeof s === "string") : [];
}

/** Roles of a token: the `roles` claim (a list or one string). */
export function rolesOf(payload: JWTPayload): string[] {
  const roles = payload.roles;
  if (typeof roles === "string") return [roles];
  return Array.isArray(roles) ? roles.filter((s): s is string => typeof s === "string") : [];
}
