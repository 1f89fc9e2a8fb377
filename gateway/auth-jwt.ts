import { webcrypto } from "node:crypto";
import { promises as fs } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwksCache, jwtVerify, type ExportedJWKSCache, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { Status } from "../runtime/errors";
import { getLogger, type Logger } from "../runtime/logger";
import { cookieValue } from "./headers";
import { GatewayError } from "./http-errors";
import type { JwtSettings } from "./policy";

/**
 * JWT verification with `jose`: keys from a shared secret (HS*), a local JWKS
 * file (re-read when it changes, so keys rotate without a restart) or a JWKS
 * URL (cached; an unknown `kid` triggers a refetch, rate-limited by jose).
 * `exp`/`nbf` are checked with the configured leeway. A token that verified is
 * reused for up to `cacheSeconds` (never past its `exp`), as Envoy's
 * `jwt_cache_config` does: a client sends the same token on every request, and
 * the signature check through WebCrypto costs far more than the lookup.
 *
 * A JWKS URL the gateway cannot fetch (refused, timed out, not a 200 with a key set) is not the
 * caller's fault: tokens are checked against the last key set fetched while it is current, and for
 * `jwksStaleSeconds` after it was due to be fetched again; without one the request is answered 503
 * UNAVAILABLE, not 401. The failure is logged once per streak. A token whose `kid` is not in the
 * set in hand stays 401 even when the refetch that kid triggered fails.
 */

const HS = ["HS256", "HS384", "HS512"];
/** How long a verified token is reused without checking its signature again (`jwt.cacheSeconds`). */
export const DEFAULT_CACHE_SECONDS = 60;
/** How many verified tokens are kept (`jwt.cacheEntries`). */
export const DEFAULT_CACHE_ENTRIES = 10_000;
/** Longer tokens are verified on every request (bounds the cache's memory with the entry count). */
const MAX_CACHED_TOKEN = 8192;
/** `Retry-After` (seconds) on a 503 for signing keys that cannot be fetched: jose's refetch cooldown. */
export const KEYS_RETRY_AFTER_SECONDS = 5;
/** How long a fetched JWKS is used before it is fetched again (`jwksCacheSeconds`). */
export const DEFAULT_JWKS_CACHE_SECONDS = 600;
/** How long past that the last set is used while the URL cannot be fetched (`jwksStaleSeconds`). */
export const DEFAULT_JWKS_STALE_SECONDS = 3600;
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

export class JwtVerifier {
  private readonly getKey: JWTVerifyGetKey;
  /** HS*: the shared secret; its CryptoKey is imported once per algorithm, not per token. */
  private readonly secret: Uint8Array | undefined;
  private readonly hmacKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
  private fileKeys: { mtimeMs: number; get: JWTVerifyGetKey } | undefined;
  private fileChecked = 0;
  /** Tokens that verified, by the whole token string, with their claims and how long they may be reused. */
  private readonly verified = new Map<string, { payload: JWTPayload; until: number }>();
  private hits = 0;
  private checks = 0;
  private readonly options: { issuer?: string; audience?: string; clockTolerance: number; algorithms: string[] };
  /** JWKS URL: when the last successful fetch was (jose writes `uat`), and since when fetches fail (undefined: they do not). */
  private readonly fetched: Partial<ExportedJWKSCache> = {};
  private failingSince: number | undefined;
  /** The last key set fetched, as a local set (rebuilt when a fetch brings a new one). */
  private lastKeys: { uat: number; get: JWTVerifyGetKey } | undefined;
  /** When the last fetch failed (ms). */
  private lastFailure = 0;

  constructor(
    private readonly settings: JwtSettings,
    private readonly logger: Logger = getLogger(),
  ) {
    if (settings.secret !== undefined) {
      this.secret = new TextEncoder().encode(settings.secret);
      this.getKey = (header) => this.hmacKey(header.alg);
    } else if (settings.jwksUrl !== undefined) this.getKey = this.remoteKeys(new URL(settings.jwksUrl));
    else if (settings.jwksFile !== undefined) this.getKey = (header, token) => this.fromFile(header, token);
    else throw new Error("jwt settings need one of secret, jwksUrl or jwksFile");
    this.options = { issuer: settings.issuer, audience: settings.audience, clockTolerance: settings.leewaySeconds ?? 30, algorithms: this.secret ? HS : ASYMMETRIC };
  }

  /** The token from the request: Authorization header, then the cookie, then the query parameter. */
  tokenOf(req: IncomingMessage, query: readonly [string, string][]): string | undefined {
    const auth = req.headers.authorization;
    if (typeof auth === "string" && /^bearer /i.test(auth)) return auth.slice(7).trim();
    if (this.settings.cookie && typeof req.headers.cookie === "string") {
      for (const part of req.headers.cookie.split(";")) {
        const eq = part.indexOf("=");
        if (eq !== -1 && part.slice(0, eq).trim() === this.settings.cookie) {
          const value = cookieValue(part.slice(eq + 1).trim());
          // A cookie that cannot be decoded is no token: refused like any malformed one.
          if (value === undefined) throw unauthenticated("malformed token");
          return value;
        }
      }
    }
    if (this.settings.queryParam) return query.find(([k]) => k === this.settings.queryParam)?.[1];
    return undefined;
  }

  /**
   * Verifies `token`; 401 with a reason on any failure. A token that verified within the last
   * `cacheSeconds` (and is not past its `exp`) is answered from the cache without the signature
   * check; the cache is keyed by the whole token, so only that exact string can hit it.
   */
  async verify(token: string): Promise<JWTPayload> {
    if (this.settings.jwksFile !== undefined) await this.checkKeyFile();
    const now = Date.now();
    const cached = this.verified.get(token);
    if (cached) {
      if (now < cached.until) {
        this.hits++;
        return cached.payload;
      }
      this.verified.delete(token);
    }
    this.checks++;
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, this.getKey, this.options)).payload;
    } catch (err) {
      throw err instanceof GatewayError ? err : unauthenticated(describe(err));
    }
    this.remember(token, payload, now);
    return payload;
  }

  /** Requests answered from the cache, signature checks run, tokens cached now. */
  cacheStats(): { hits: number; checks: number; entries: number } {
    return { hits: this.hits, checks: this.checks, entries: this.verified.size };
  }

  /** Keeps a verified token until the earlier of `cacheSeconds` from now and its `exp` (plus leeway). */
  private remember(token: string, payload: JWTPayload, now: number): void {
    const seconds = this.settings.cacheSeconds ?? DEFAULT_CACHE_SECONDS;
    const entries = this.settings.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    if (seconds === 0 || entries === 0 || token.length > MAX_CACHED_TOKEN) return;
    let until = now + seconds * 1000;
    if (typeof payload.exp === "number") until = Math.min(until, (payload.exp + this.options.clockTolerance) * 1000);
    if (until <= now) return;
    // Oldest first out: only tokens that verified get in, so churn costs a re-verification, nothing more.
    while (this.verified.size >= entries) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { payload, until });
  }

  /**
   * Keys from a JWKS URL (jose's remote set: cached, refetched for an unknown `kid` after a 5 s
   * cooldown). A fetch that fails is told apart from a token that does not verify: without a
   * current key set it is 503 ({@link keysUnavailable}); with one, the token's `kid` is not among
   * the keys we have, so it is refused as such (401).
   */
  private remoteKeys(url: URL): JWTVerifyGetKey {
    const maxAgeMs = (this.settings.jwksCacheSeconds ?? DEFAULT_JWKS_CACHE_SECONDS) * 1000;
    const staleMs = (this.settings.jwksStaleSeconds ?? DEFAULT_JWKS_STALE_SECONDS) * 1000;
    const remote = createRemoteJWKSet(url, { cooldownDuration: 5_000, cacheMaxAge: maxAgeMs, timeoutDuration: 5_000, [jwksCache]: this.fetched as ExportedJWKSCache });
    /** The last key set fetched, if it may still be used now. */
    const usable = (): { jwks: NonNullable<ExportedJWKSCache["jwks"]>; uat: number } | undefined => {
      const { jwks, uat } = this.fetched;
      return jwks !== undefined && uat !== undefined && Date.now() <= uat + maxAgeMs + staleMs ? { jwks, uat } : undefined;
    };
    const fromLast = (last: NonNullable<ReturnType<typeof usable>>): JWTVerifyGetKey => {
      if (this.lastKeys?.uat !== last.uat) this.lastKeys = { uat: last.uat, get: createLocalJWKSet(last.jwks) };
      return this.lastKeys.get;
    };
    return async (header, token) => {
      // While fetches fail and the last set is still usable, one fetch is tried per cooldown, not
      // one per request; the requests between are checked against the last set.
      if (this.failingSince !== undefined && !remote.fresh && Date.now() - this.lastFailure < KEYS_RETRY_AFTER_SECONDS * 1000) {
        const last = usable();
        if (last) return fromLast(last)(header, token);
      }
      try {
        const key = await remote(header, token);
        if (this.failingSince !== undefined && (this.fetched.uat ?? 0) >= this.failingSince) {
          this.failingSince = undefined;
          this.logger.info("gateway: JWKS fetched again", { jwksUrl: url.href });
        }
        return key;
      } catch (err) {
        if (!isFetchFailure(err)) throw err;
        // The last set fetched, while current or within the stale allowance: its keys decide
        // (a kid it does not have is 401, as with a current set).
        const last = usable();
        this.lastFailure = Date.now();
        if (this.failingSince === undefined) {
          this.failingSince = this.lastFailure;
          this.logger.warn("gateway: cannot fetch the JWKS signing keys", {
            jwksUrl: url.href,
            err: errorText(err),
            ...(last ? { usingKeysFetchedAt: new Date(last.uat).toISOString(), until: new Date(last.uat + maxAgeMs + staleMs).toISOString() } : {}),
          });
        }
        if (!last) throw keysUnavailable();
        return fromLast(last)(header, token);
      }
    };
  }

  /** The secret as an HMAC key for `alg` (HS256/384/512), imported on first use. */
  private hmacKey(alg: string | undefined): Promise<webcrypto.CryptoKey> {
    let key = this.hmacKeys.get(alg ?? "");
    if (!key) {
      // jose checks the algorithm against `algorithms` before asking for a key; this is a second guard.
      if (alg === undefined || !HS.includes(alg)) return Promise.reject(new joseErrors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`));
      key = webcrypto.subtle.importKey("raw", this.secret!, { name: "HMAC", hash: `SHA-${alg.slice(2)}` }, false, ["verify"]);
      this.hmacKeys.set(alg, key);
    }
    return key;
  }

  private async fromFile(...args: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    await this.checkKeyFile();
    return this.fileKeys!.get(...args);
  }

  /**
   * Re-reads the JWKS file when it changed (stat at most once a second: rotation shows up quickly
   * without a syscall per request), and then forgets every cached verification: a key taken out
   * of the file stops its tokens at once.
   */
  private async checkKeyFile(): Promise<void> {
    const now = Date.now();
    if (this.fileKeys && now - this.fileChecked <= 1000) return;
    this.fileChecked = now;
    const file = this.settings.jwksFile!;
    const stat = await fs.stat(file);
    if (!this.fileKeys || stat.mtimeMs !== this.fileKeys.mtimeMs) {
      const jwks = JSON.parse(await fs.readFile(file, "utf8")) as Parameters<typeof createLocalJWKSet>[0];
      this.fileKeys = { mtimeMs: stat.mtimeMs, get: createLocalJWKSet(jwks) };
      this.verified.clear();
    }
  }
}

/**
 * Whether the remote key set failed to fetch: fetch's own errors (connection refused, DNS, TLS;
 * no JOSE errors), a timeout, an answer other than 200 or not JSON (jose's generic error), or a
 * document that is no key set.
 */
function isFetchFailure(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  return !(err instanceof joseErrors.JOSEError) || err.code === "ERR_JOSE_GENERIC";
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && cause !== err.message ? `${err.message}: ${cause}` : err.message;
}

/** 503 for signing keys that cannot be fetched: the key server's outage, not the caller's token. */
export function keysUnavailable(): GatewayError {
  return new GatewayError(Status.UNAVAILABLE, "cannot fetch the signing keys", 503, { "retry-after": String(KEYS_RETRY_AFTER_SECONDS) });
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
