import { expect } from "chai";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Status, type Server } from "protomesh";
import type { Gateway, GatewayPolicy } from "../gateway";
import { captureLogger } from "./helpers/capture-logger";
import { startGateway, startHttpGreeter } from "./helpers/gateway";
import { waitFor } from "./helpers/wait";

/**
 * Where the gateway finds a JWT (header, cookie, query parameter: only those
 * the policy names), the `nbf` check with its leeway, asymmetric keys (RS256,
 * EdDSA) from a JWKS file, a JWKS URL whose key rotates, and roles. A real
 * gateway in front of a real upstream; the policy is set in process.
 */

const SECRET = "a-test-secret-of-enough-length";
const ECHO = "examples.gateway.v1.HttpGreeter.Echo";
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

function hs(claims: Record<string, unknown>, nbf?: number): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(String(claims.sub ?? "u1")).setIssuedAt().setExpirationTime("5m");
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  return jwt.sign(new TextEncoder().encode(SECRET));
}

function sign(key: KeyPair["privateKey"], alg: string, kid: string, sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject(sub).setExpirationTime("5m").sign(key);
}

async function jwk(key: KeyPair["publicKey"], kid: string, alg: string): Promise<Record<string, unknown>> {
  return { ...(await exportJWK(key)), kid, alg, use: "sig" };
}

describe("gateway JWT sources, nbf, asymmetric keys, JWKS rotation and roles", function () {
  this.timeout(60_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };

  before(async () => {
    greeter = await startHttpGreeter();
    gw = await startGateway(greeter.address);
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  function policy(jwt: NonNullable<GatewayPolicy["jwt"]>, route: NonNullable<GatewayPolicy["methods"]>[string] = {}): void {
    gw.gateway.setPolicy({ methods: { [ECHO]: { auth: "jwt", unknownQueryParams: "reject", ...route } }, jwt: { claimsToMetadata: { sub: "x-user-id" }, ...jwt } });
  }

  /** GET /v1/echo/a/b: the status, and who the upstream saw (the `sub` as `user:<sub>`) or the error message. */
  async function call(init: { query?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; who: string }> {
    const res = await fetch(`${gw.url}/v1/echo/a/b${init.query ? `?${init.query}` : ""}`, { headers: init.headers });
    const body = (await res.json()) as { shownAs?: string; message?: string };
    return { status: res.status, who: res.status === 200 ? String(body.shownAs) : String(body.message) };
  }

  it("takes the token from the cookie the policy names, and from no cookie when it names none", async () => {
    const token = await hs({ sub: "cookie-user" });
    policy({ secret: SECRET, cookie: "session" });
    expect(await call({ headers: { cookie: `theme=dark; session=${token}; other=1` } })).to.deep.equal({ status: 200, who: "user:cookie-user" });
    expect((await call({ headers: { cookie: `jwt=${token}` } })).status).to.equal(401);
    // The Authorization header comes first.
    expect(await call({ headers: { cookie: `session=${token}`, authorization: `Bearer ${await hs({ sub: "header-user" })}` } })).to.deep.equal({ status: 200, who: "user:header-user" });
    policy({ secret: SECRET });
    expect(await call({ headers: { cookie: `session=${token}` } })).to.deep.equal({ status: 401, who: "missing bearer token" });
  });

  it("takes a cookie token written as a quoted string (RFC 6265 `name=\"value\"`) without its quotes", async () => {
    const token = await hs({ sub: "quoted-user" });
    policy({ secret: SECRET, cookie: "session", cacheSeconds: 0 });
    expect(await call({ headers: { cookie: `theme=dark; session="${token}"` } })).to.deep.equal({ status: 200, who: "user:quoted-user" });
    // One pair only, and only a pair: a lone quote or a doubled pair is still part of the value.
    expect((await call({ headers: { cookie: `session="${token}` } })).status).to.equal(401);
    expect((await call({ headers: { cookie: `session=""${token}""` } })).status).to.equal(401);
  });

  it("takes the token from the query parameter the policy names (not a message field then), and from none otherwise", async () => {
    const token = await hs({ sub: "query-user" });
    policy({ secret: SECRET, queryParam: "access_token" });
    // unknownQueryParams is "reject": the token parameter is the gateway's, not an unknown field.
    expect(await call({ query: `access_token=${token}` })).to.deep.equal({ status: 200, who: "user:query-user" });
    expect((await call({ query: `token=${token}` })).status).to.equal(401);
    policy({ secret: SECRET, cookie: "session" });
    const refused = await call({ query: `access_token=${token}` });
    expect(refused).to.deep.equal({ status: 401, who: "missing bearer token" });
  });

  it("refuses a token whose nbf is in the future beyond the leeway, and accepts one within it", async () => {
    policy({ secret: SECRET, leewaySeconds: 10, cacheSeconds: 0 });
    const now = Math.floor(Date.now() / 1000);
    const early = await call({ headers: { authorization: `Bearer ${await hs({ sub: "early" }, now + 120)}` } });
    expect(early.status).to.equal(401);
    expect(early.who).to.match(/^token claim nbf rejected/);
    expect(await call({ headers: { authorization: `Bearer ${await hs({ sub: "nearly" }, now + 3)}` } })).to.deep.equal({ status: 200, who: "user:nearly" });
    expect(await call({ headers: { authorization: `Bearer ${await hs({ sub: "past" }, now - 60)}` } })).to.deep.equal({ status: 200, who: "user:past" });
  });

  it("verifies RS256 and EdDSA (Ed25519) tokens with keys from a JWKS file, and no HS256 token there", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-jwks-alg-"));
    try {
      const rsa = await generateKeyPair("RS256");
      const ed = await generateKeyPair("EdDSA", { crv: "Ed25519" });
      const otherRsa = await generateKeyPair("RS256");
      const file = path.join(dir, "jwks.json");
      fs.writeFileSync(file, JSON.stringify({ keys: [await jwk(rsa.publicKey, "rsa-1", "RS256"), await jwk(ed.publicKey, "ed-1", "EdDSA")] }));
      policy({ jwksFile: file });
      const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
      expect(await call(bearer(await sign(rsa.privateKey, "RS256", "rsa-1", "rs")))).to.deep.equal({ status: 200, who: "user:rs" });
      expect(await call(bearer(await sign(ed.privateKey, "EdDSA", "ed-1", "ed")))).to.deep.equal({ status: 200, who: "user:ed" });
      // A key not in the file, under a kid that is: the signature does not verify.
      expect(await call(bearer(await sign(otherRsa.privateKey, "RS256", "rsa-1", "forged")))).to.deep.equal({ status: 401, who: "bad token signature" });
      // An EdDSA token presented under the RSA key's kid.
      expect((await call(bearer(await sign(ed.privateKey, "EdDSA", "rsa-1", "mixed")))).status).to.equal(401);
      // With asymmetric keys an HMAC token is refused outright (no secret to confuse with a public key).
      expect(await call(bearer(await hs({ sub: "hs" })))).to.deep.equal({ status: 401, who: "token algorithm not allowed" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("JWKS URL: after the issuer rotates, a token with the new kid verifies once the gateway refetches (unknown kid, 5 s cooldown), and the old kid is refused", async function () {
    this.timeout(40_000);
    const k1 = await generateKeyPair("ES256");
    const k2 = await generateKeyPair("ES256");
    let served = [await jwk(k1.publicKey, "k1", "ES256")];
    const fetches: number[] = [];
    const jwks = http.createServer((_req, res) => {
      fetches.push(Date.now());
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`;
      // cacheSeconds 0: every request is checked against the key set, so a dropped key shows at once.
      policy({ jwksUrl: url, cacheSeconds: 0 });
      const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
      expect(await call(bearer(await sign(k1.privateKey, "ES256", "k1", "one")))).to.deep.equal({ status: 200, who: "user:one" });
      expect(fetches).to.have.length(1);
      // The set is cached: a second token needs no fetch.
      expect((await call(bearer(await sign(k1.privateKey, "ES256", "k1", "one-again")))).status).to.equal(200);
      expect(fetches).to.have.length(1);

      served = [await jwk(k2.publicKey, "k2", "ES256")];
      const t2 = await sign(k2.privateKey, "ES256", "k2", "two");
      const first = await call(bearer(t2));
      if (Date.now() - fetches[0] < 4000) {
        // Within the cooldown after the last fetch an unknown kid is refused without a refetch.
        expect(first).to.deep.equal({ status: 401, who: "no key matches the token" });
        expect(fetches).to.have.length(1);
      }
      await waitFor(async () => (await call(bearer(t2))).status === 200, { timeoutMs: 15_000, intervalMs: 250, what: "token with the rotated kid accepted" });
      expect(fetches.length).to.be.at.least(2);
      expect(fetches[1] - fetches[0], "refetched only after the cooldown").to.be.at.least(4900);
      expect(await call(bearer(t2))).to.deep.equal({ status: 200, who: "user:two" });
      // The old kid is gone from the refetched set.
      expect(await call(bearer(await sign(k1.privateKey, "ES256", "k1", "old")))).to.deep.equal({ status: 401, who: "no key matches the token" });
    } finally {
      jwks.close();
    }
  });

  it("JWKS URL the gateway cannot fetch: 503 UNAVAILABLE with Retry-After (not 401), logged once per failure streak; with the keys in hand an unknown kid stays 401", async function () {
    this.timeout(40_000);
    const k1 = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    const keys = [await jwk(k1.publicKey, "k1", "ES256")];
    const fetches: number[] = [];
    const serve = (port: number) =>
      new Promise<http.Server>((resolve) => {
        const server = http.createServer((_req, res) => {
          fetches.push(Date.now());
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ keys }));
        });
        server.listen(port, "127.0.0.1", () => resolve(server));
      });
    const stop = (server: http.Server) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    let jwks = await serve(0);
    const port = (jwks.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}/.well-known/jwks.json`;
    const log = captureLogger();
    const own = await startGateway(greeter.address, { logger: log });
    try {
      own.gateway.setPolicy({ methods: { [ECHO]: { auth: "jwt" } }, jwt: { jwksUrl: url, cacheSeconds: 0, claimsToMetadata: { sub: "x-user-id" } } });
      const call = async (token: string) => {
        const res = await fetch(`${own.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { shownAs?: string; message?: string; code?: number };
        return { status: res.status, who: res.status === 200 ? String(body.shownAs) : String(body.message), code: body.code, retryAfter: res.headers.get("retry-after"), challenge: res.headers.get("www-authenticate") };
      };
      const fetchFailures = () => log.matching("cannot fetch the JWKS");

      // The key server is down before the gateway ever had its keys: no token can be checked.
      await stop(jwks);
      const one = await sign(k1.privateKey, "ES256", "k1", "one");
      for (const token of [one, one, await sign(other.privateKey, "ES256", "k9", "anyone")]) {
        expect(await call(token)).to.deep.equal({ status: 503, who: "cannot fetch the signing keys", code: Status.UNAVAILABLE, retryAfter: "5", challenge: null });
      }
      // One warning for the streak, with what fetch said; not one per request.
      expect(fetchFailures()).to.have.length(1);
      expect(fetchFailures()[0].level).to.equal("warn");
      expect(fetchFailures()[0].fields.jwksUrl).to.equal(url);
      expect(String(fetchFailures()[0].fields.err)).to.match(/fetch failed.*ECONNREFUSED/);

      // Back (same address): the keys are fetched, the streak ends.
      jwks = await serve(port);
      expect((await call(one)).who).to.equal("user:one");
      expect(log.matching("JWKS fetched again")).to.have.length(1);

      // Down again, with a current key set in hand: tokens are checked against it, and a token that
      // does not verify against it is still 401 (an unknown kid too, although its refetch fails).
      await stop(jwks);
      expect((await call(await sign(k1.privateKey, "ES256", "k1", "two"))).who).to.equal("user:two");
      expect(await call(await sign(other.privateKey, "ES256", "k1", "forged"))).to.include({ status: 401, who: "bad token signature" });
      await new Promise((r) => setTimeout(r, Math.max(0, fetches[fetches.length - 1] + 5_200 - Date.now())));
      const unknown = await call(await sign(other.privateKey, "ES256", "k9", "stranger"));
      expect(unknown).to.include({ status: 401, who: "no key matches the token", retryAfter: null });
      expect(unknown.challenge).to.match(/^Bearer realm="protomesh", error="invalid_token"/);
      expect(fetchFailures(), "a new streak, one more warning").to.have.length(2);
      expect((await call(await sign(other.privateKey, "ES256", "k8", "stranger"))).status).to.equal(401);
      expect(fetchFailures()).to.have.length(2);
    } finally {
      await own.gateway.close();
      if (jwks.listening) await stop(jwks);
    }
  });

  it("JWKS URL down after its keys went stale: the last set keeps verifying for jwksStaleSeconds (one fetch per cooldown), then 503", async function () {
    this.timeout(40_000);
    const k1 = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    const keys = [await jwk(k1.publicKey, "k1", "ES256")];
    const fetches: number[] = [];
    const failed: number[] = [];
    let down = false;
    // Up: the key set. Down: 503 (not a key set), with every attempt counted.
    const jwks = http.createServer((_req, res) => {
      if (down) {
        failed.push(Date.now());
        res.statusCode = 503;
        return void res.end();
      }
      fetches.push(Date.now());
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`;
    const log = captureLogger();
    const own = await startGateway(greeter.address, { logger: log });
    const call = async (token: string) => {
      const res = await fetch(`${own.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { shownAs?: string; message?: string };
      return { status: res.status, who: res.status === 200 ? String(body.shownAs) : String(body.message) };
    };
    try {
      own.gateway.setPolicy({ methods: { [ECHO]: { auth: "jwt" } }, jwt: { jwksUrl: url, cacheSeconds: 0, jwksCacheSeconds: 1, jwksStaleSeconds: 3, claimsToMetadata: { sub: "x-user-id" } } });
      expect(await call(await sign(k1.privateKey, "ES256", "k1", "first"))).to.deep.equal({ status: 200, who: "user:first" });
      const fetchedAt = fetches[fetches.length - 1];
      down = true;
      // Past jwksCacheSeconds: the set is due to be fetched again, and the fetch fails.
      await new Promise((r) => setTimeout(r, Math.max(0, fetchedAt + 1_300 - Date.now())));
      for (let i = 0; i < 5; i++) expect(await call(await sign(k1.privateKey, "ES256", "k1", `stale-${i}`))).to.deep.equal({ status: 200, who: `user:stale-${i}` });
      // The last set decides: a token it cannot verify is 401, not 503.
      expect(await call(await sign(other.privateKey, "ES256", "k1", "forged"))).to.include({ status: 401 });
      // Six requests within the cooldown: one fetch was tried, not six.
      expect(failed, "fetch attempts while down").to.have.length(1);
      const warned = log.matching("cannot fetch the JWKS");
      expect(warned, "one warning for the streak").to.have.length(1);
      expect(Date.parse(String(warned[0].fields.usingKeysFetchedAt))).to.be.closeTo(fetchedAt, 1_000);
      // Past the stale allowance (1 s + 3 s after the fetch): no usable keys, 503.
      await new Promise((r) => setTimeout(r, Math.max(0, fetchedAt + 4_300 - Date.now())));
      const late = await waitFor(async () => {
        const r = await call(await sign(k1.privateKey, "ES256", "k1", "late"));
        return r.status === 503 ? r : undefined;
      }, { timeoutMs: 10_000, what: "503 once the stale allowance is over" });
      expect(late.who).to.equal("cannot fetch the signing keys");
    } finally {
      await own.gateway.close();
      jwks.closeAllConnections();
      jwks.close();
    }
  });

  it("a valid token without any of the route's roles is 403; with one of them (list or string) it passes", async () => {
    policy({ secret: SECRET }, { roles: ["admin", "ops"] });
    const as = async (roles: unknown) => call({ headers: { authorization: `Bearer ${await hs({ sub: "r", ...(roles === undefined ? {} : { roles }) })}` } });
    expect(await as(["user"])).to.deep.equal({ status: 403, who: "requires one of the roles admin, ops" });
    expect((await as(undefined)).status).to.equal(403);
    expect((await as("administrator")).status).to.equal(403);
    expect((await as(["user", "ops"])).status).to.equal(200);
    expect((await as("admin")).status).to.equal(200);
    // A role check comes after authentication: no token is still 401.
    expect((await call()).status).to.equal(401);
  });
});
