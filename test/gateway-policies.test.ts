import { expect } from "chai";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { Server } from "protomesh";
import { ApiKeyAdmin, keysPrefix, PolicyStore, PolicyValidationError, type Gateway, type GatewayPolicy } from "../gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { startGateway, startHttpGreeter } from "./helpers/gateway";
import { useRedis } from "./helpers/redis";
import { waitFor } from "./helpers/wait";

const SECRET = "a-test-secret-of-enough-length";
const ECHO = "examples.gateway.v1.HttpGreeter.Echo";
const HELLO = "examples.gateway.v1.HttpGreeter.SayHello";

function hs(claims: Record<string, unknown>, exp: number | string = "5m"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime(exp).setSubject(String(claims.sub ?? "u1")).sign(new TextEncoder().encode(SECRET));
}

describe("gateway policies in etcd: auth, rate limits, hot reload", function () {
  this.timeout(60_000);
  const etcd = useEmbeddedEtcd();
  const redis = useRedis();
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };
  let store: PolicyStore;
  let namespace: string;

  /** Writes `policy` and waits until the gateway applies it. */
  async function apply(policy: GatewayPolicy, g: Gateway = gw.gateway): Promise<void> {
    const rec = await store.write(policy, { comment: "test" });
    await waitFor(() => g.policy.version === rec.version, { timeoutMs: 10_000, what: `policy v${rec.version} applied` });
  }

  before(async () => {
    namespace = uniqueNamespace();
    greeter = await startHttpGreeter();
    store = new PolicyStore({ endpoints: etcd.endpoints, namespace, env: "test" });
    gw = await startGateway(greeter.address, { etcd: { endpoints: etcd.endpoints, namespace }, env: "test", redis: redis.url });
  });
  after(async () => {
    await gw?.gateway.close();
    store?.close();
    await greeter?.server.shutdown();
  });

  it("refuses to store an invalid policy, naming each problem", async () => {
    try {
      await store.write({ defaults: { auth: "jwtt", ratelimit: {} }, methods: { x: {} } });
      expect.fail("write should have failed");
    } catch (err) {
      expect(err).to.be.instanceOf(PolicyValidationError);
      const msg = (err as Error).message;
      expect(msg).to.contain("defaults.auth");
      expect(msg).to.contain("defaults.ratelimit: unknown field");
      expect(msg).to.contain('methods["x"]');
    }
  });

  it("JWT: 401 with WWW-Authenticate without or with a bad token, 403 without the scope, 200 with claims as metadata", async () => {
    await apply({ methods: { [ECHO]: { auth: "jwt", scopes: ["echo"] } }, jwt: { secret: SECRET, leewaySeconds: 5, claimsToMetadata: { sub: "x-user-id" } } });
    const none = await fetch(`${gw.url}/v1/echo/a/b`);
    expect(none.status).to.equal(401);
    expect(none.headers.get("www-authenticate")).to.match(/^Bearer realm="protomesh", error="invalid_token"/);
    const bad = await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: "Bearer not.a.jwt" } });
    expect(bad.status).to.equal(401);
    const noScope = await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${await hs({ sub: "ada" })}` } });
    expect(noScope.status).to.equal(403);
    const ok = await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${await hs({ sub: "ada", scope: "read echo" })}` } });
    expect(ok.status).to.equal(200);
    expect(((await ok.json()) as { shownAs: string }).shownAs).to.equal("user:ada");
    // Other routes are untouched by the method's policy.
    expect((await fetch(`${gw.url}/v1/hello/Ada`)).status).to.equal(200);
  });

  it("JWT: an expired token is accepted within the leeway and refused beyond it", async () => {
    const now = Math.floor(Date.now() / 1000);
    const justExpired = await hs({ sub: "b", scope: "echo" }, now - 2);
    expect((await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${justExpired}` } })).status).to.equal(200);
    const longExpired = await hs({ sub: "b", scope: "echo" }, now - 60);
    const res = await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${longExpired}` } });
    expect(res.status).to.equal(401);
    expect(((await res.json()) as { message: string }).message).to.equal("token expired");
  });

  it("JWT: keys from a JWKS file rotate without a restart, and from a JWKS URL", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-jwks-"));
    const file = path.join(dir, "jwks.json");
    const k1 = await generateKeyPair("ES256");
    const k2 = await generateKeyPair("ES256");
    type Key = Awaited<ReturnType<typeof generateKeyPair>>["publicKey"];
    const jwk = async (k: Key, kid: string) => ({ ...(await exportJWK(k)), kid, alg: "ES256", use: "sig" });
    const sign = (k: Key, kid: string) => new SignJWT({ scope: "echo" }).setProtectedHeader({ alg: "ES256", kid }).setSubject("es").setExpirationTime("5m").sign(k);
    fs.writeFileSync(file, JSON.stringify({ keys: [await jwk(k1.publicKey, "k1")] }));
    await apply({ methods: { [ECHO]: { auth: "jwt" } }, jwt: { jwksFile: file } });
    expect((await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${await sign(k1.privateKey, "k1")}` } })).status).to.equal(200);
    const t2 = await sign(k2.privateKey, "k2");
    expect((await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${t2}` } })).status).to.equal(401);
    fs.writeFileSync(file, JSON.stringify({ keys: [await jwk(k2.publicKey, "k2")] }));
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await waitFor(async () => (await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${t2}` } })).status === 200, { timeoutMs: 10_000, what: "rotated key accepted" });

    const jwks = http.createServer((_req, res) => void jwk(k1.publicKey, "k1").then((k) => res.end(JSON.stringify({ keys: [k] }))));
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`;
      await apply({ methods: { [ECHO]: { auth: "jwt" } }, jwt: { jwksUrl: url } });
      expect((await fetch(`${gw.url}/v1/echo/a/b`, { headers: { authorization: `Bearer ${await sign(k1.privateKey, "k1")}` } })).status).to.equal(200);
    } finally {
      jwks.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("API keys: stored hashed, accepted while they exist, refused once revoked", async () => {
    const client = etcd.rawEtcd();
    const admin = new ApiKeyAdmin(client, keysPrefix(namespace, "default"));
    const { key, record } = await admin.create("ci", ["echo"]);
    const raw = await client.get(keysPrefix(namespace, "default") + record.id).string();
    expect(raw).to.be.a("string");
    // pmk_<12-char id>_<43-char secret>; the secret itself may contain "_".
    const secret = key.slice("pmk_".length + 12 + 1);
    expect(secret).to.have.length(43);
    expect(raw).not.to.contain(secret);
    await apply({ methods: { [ECHO]: { auth: "api-key", scopes: ["echo"] } } });
    await waitFor(async () => (await fetch(`${gw.url}/v1/echo/a/b`, { headers: { "x-api-key": key } })).status === 200, { timeoutMs: 10_000, what: "key accepted" });
    const wrong = await fetch(`${gw.url}/v1/echo/a/b`, { headers: { "x-api-key": `${key.slice(0, -1)}${key.endsWith("x") ? "y" : "x"}` } });
    expect(wrong.status).to.equal(401);
    expect(wrong.headers.get("www-authenticate")).to.equal('ApiKey realm="protomesh"');
    expect((await admin.list()).map((r) => r.id)).to.include(record.id);
    expect(await admin.revoke(record.id)).to.equal(true);
    await waitFor(async () => (await fetch(`${gw.url}/v1/echo/a/b`, { headers: { "x-api-key": key } })).status === 401, { timeoutMs: 10_000, what: "revoked key refused" });
  });

  it("local rate limit: 429 with Retry-After and RateLimit-* headers once the bucket is empty", async () => {
    await apply({ methods: { [HELLO]: { rateLimit: { key: "header:x-client", local: { ratePerSecond: 0.01, burst: 2 } } } } });
    const call = (who: string) => fetch(`${gw.url}/v1/hello/a`, { headers: { "x-client": who } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call("c1")).status);
    expect(statuses).to.deep.equal([200, 200, 429]);
    const refused = await call("c1");
    expect(refused.headers.get("retry-after")).to.match(/^\d+$/);
    expect(refused.headers.get("ratelimit-limit")).to.equal("2");
    expect(refused.headers.get("ratelimit-remaining")).to.equal("0");
    expect(((await refused.json()) as { code: number }).code).to.equal(8);
    // Another client key has its own bucket.
    expect((await call("c2")).status).to.equal(200);
  });

  it("cluster rate limit: two gateways share one Redis limit; Redis down fails open by default and closed when asked", async () => {
    const second = await startGateway(greeter.address, { etcd: { endpoints: etcd.endpoints, namespace }, env: "test", redis: redis.url });
    try {
      await apply({ methods: { [HELLO]: { rateLimit: { key: "header:x-client", cluster: { limit: 3, windowSeconds: 600, burst: 3 } } } } });
      await waitFor(() => second.gateway.policy.version === gw.gateway.policy.version, { timeoutMs: 10_000 });
      const call = (url: string) => fetch(`${url}/v1/hello/a`, { headers: { "x-client": "shared" } });
      const statuses = [(await call(gw.url)).status, (await call(second.url)).status, (await call(gw.url)).status, (await call(second.url)).status];
      expect(statuses).to.deep.equal([200, 200, 200, 429]);

      await redis.stop();
      const started = Date.now();
      const open = await fetch(`${gw.url}/v1/hello/a`, { headers: { "x-client": "during-outage" } });
      expect(open.status).to.equal(200);
      expect(Date.now() - started).to.be.below(5000);
      await apply({ methods: { [HELLO]: { rateLimit: { key: "header:x-client", cluster: { limit: 3, windowSeconds: 600, onRedisDown: "closed" } } } } });
      const closed = await fetch(`${gw.url}/v1/hello/a`, { headers: { "x-client": "during-outage-2" } });
      expect(closed.status).to.equal(503);
    } finally {
      await second.gateway.close();
      await redis.start();
    }
  });

  it("cluster rate limit on a gateway without Redis: enforced at the cluster rate by a local bucket (it was no limit at all)", async () => {
    const noRedis = await startGateway(greeter.address, { etcd: { endpoints: etcd.endpoints, namespace }, env: "test" });
    try {
      await apply({ methods: { [HELLO]: { rateLimit: { key: "header:x-client", cluster: { limit: 3, windowSeconds: 600, burst: 2 } } } } });
      await waitFor(() => noRedis.gateway.policy.version === gw.gateway.policy.version, { timeoutMs: 10_000 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${noRedis.url}/v1/hello/a`, { headers: { "x-client": "no-redis" } })).status);
      expect(statuses).to.deep.equal([200, 200, 429]);
    } finally {
      await noRedis.gateway.close();
    }
  });

  it("keeps versions: history lists them and rollback restores an older one everywhere", async () => {
    await apply({ methods: { [HELLO]: { auth: "jwt" } }, jwt: { secret: SECRET } });
    expect((await fetch(`${gw.url}/v1/hello/a`)).status).to.equal(401);
    const history = await store.history();
    const open = history.find((r) => JSON.stringify(r.value) === JSON.stringify({ methods: { [HELLO]: { rateLimit: { key: "header:x-client", cluster: { limit: 3, windowSeconds: 600, onRedisDown: "closed" } } } } }));
    expect(open, "an earlier version").to.not.equal(undefined);
    const first = history[history.length - 1];
    const rec = await store.rollback(first.version, "back to the start");
    await waitFor(() => gw.gateway.policy.version === rec.version, { timeoutMs: 10_000 });
    expect((await fetch(`${gw.url}/v1/hello/a`)).status).to.equal(200);
  });
});
