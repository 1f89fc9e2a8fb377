import { expect } from "chai";
import { SignJWT } from "jose";
import type { Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd";
import type { Gateway, GatewayPolicy } from "../gateway";
import type { TrafficRule } from "../runtime/balancing";
import { captureLogger } from "./helpers/capture-logger";
import { startGateway, startRegisteredGreeter } from "./helpers/gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

/**
 * Traffic rules at the gateway (the shared rule model): two real instances of
 * one service registered in a private etcd with versions v1 and v2, chosen per
 * HTTP request by a JWT claim, by a percentage, by weights, and stickily by a
 * key. Each answer names the instance that served it.
 */

const SECRET = "a-test-secret-of-enough-length";
const SERVICE = "http-greeter";
const HELLO = "examples.gateway.v1.HttpGreeter.SayHello";
const SUBSETS = { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } };

describe("gateway traffic rules: JWT claims, percentages, weights, sticky keys (two registered instances)", function () {
  this.timeout(60_000);
  let registry: EtcdRegistry;
  const servers: Server[] = [];
  let gw: { gateway: Gateway; url: string };
  const log = captureLogger();

  // Hooks run in the order they are declared: this teardown before etcd's, so nothing loses etcd while running.
  after(async () => {
    await gw?.gateway.close();
    for (const s of servers) await s.shutdown();
    await registry?.close();
  });
  const etcd = useEmbeddedEtcd();
  before(async () => {
    const namespace = uniqueNamespace();
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    for (const version of ["v1", "v2"]) {
      servers.push(await startRegisteredGreeter(registry, SERVICE, `${version}-instance`, version));
    }
    gw = await startGateway(`etcd:///${SERVICE}`, { etcd: { endpoints: etcd.endpoints, namespace }, logger: log });
  });

  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(String(claims.sub ?? "u")).setExpirationTime("5m").sign(new TextEncoder().encode(SECRET));

  /** One GET /v1/hello/a: the instance that answered, the subset and the route the gateway reported. */
  async function hello(headers: Record<string, string> = {}): Promise<{ by: string; subset: string | null; route: string | null }> {
    const res = await fetch(`${gw.url}/v1/hello/a`, { headers });
    expect(res.status, await res.clone().text()).to.equal(200);
    return { by: ((await res.json()) as { servedBy: string }).servedBy, subset: res.headers.get("x-protomesh-subset"), route: res.headers.get("x-protomesh-route") };
  }

  /** Sets the rule (and any other policy), then waits until the registry watch has listed both instances. */
  async function rule(traffic: TrafficRule, extra: GatewayPolicy = {}, probe: Record<string, string> = {}): Promise<void> {
    gw.gateway.setPolicy({ ...extra, traffic: { [SERVICE]: traffic } });
    await waitFor(async () => (await hello(probe)).subset !== null, { timeoutMs: 15_000, what: "the rule in force with its instance list" });
  }

  it("routes by a JWT claim (jwt.<claim>, strings and other JSON values) on a route that authenticates", async () => {
    await rule(
      {
        subsets: SUBSETS,
        routes: [
          { name: "beta-plan", match: { attributes: { "jwt.plan": "beta" } }, to: [{ subset: "canary" }] },
          { name: "staff", match: { attributes: { "jwt.staff": "true", "jwt.sub": { prefix: "emp-" } } }, to: [{ subset: "canary" }] },
          { name: "everyone", to: [{ subset: "stable" }] },
        ],
      },
      { methods: { [HELLO]: { auth: "jwt" } }, jwt: { secret: SECRET } },
      { authorization: `Bearer ${await token({ plan: "free" })}` },
    );
    const as = async (claims: Record<string, unknown>) => hello({ authorization: `Bearer ${await token(claims)}` });
    expect(await as({ plan: "beta" })).to.deep.equal({ by: "v2-instance", subset: "canary", route: "beta-plan" });
    expect(await as({ plan: "free" })).to.deep.equal({ by: "v1-instance", subset: "stable", route: "everyone" });
    expect(await as({ sub: "emp-7", staff: true })).to.deep.equal({ by: "v2-instance", subset: "canary", route: "staff" });
    expect((await as({ sub: "ext-7", staff: true })).route).to.equal("everyone");
    expect((await as({ sub: "emp-8", staff: false })).route).to.equal("everyone");
    // A claim literally named "jwt.plan" is not the claim "plan".
    expect((await as({ plan: "free", "jwt.plan": "beta" })).route).to.equal("everyone");
  });

  it("a claim attribute never matches on a route that does not authenticate (no claims), even with a token sent", async () => {
    await rule({ subsets: SUBSETS, routes: [{ name: "beta-plan", match: { attributes: { "jwt.plan": "beta" } }, to: [{ subset: "canary" }] }, { name: "everyone", to: [{ subset: "stable" }] }] }, { jwt: { secret: SECRET } });
    expect((await hello({ authorization: `Bearer ${await token({ plan: "beta" })}` })).route).to.equal("everyone");
  });

  it("splits by weight: 80/20 over 500 requests without a key lands within 4 standard deviations of 100 on the canary", async () => {
    await rule({ subsets: SUBSETS, routes: [{ name: "split", to: [{ subset: "stable", weight: 80 }, { subset: "canary", weight: 20 }] }] });
    const N = 500;
    const counts = { "v1-instance": 0, "v2-instance": 0 } as Record<string, number>;
    for (let i = 0; i < N; i++) {
      const r = await hello();
      expect(r.subset).to.equal(r.by === "v2-instance" ? "canary" : "stable");
      counts[r.by]++;
    }
    // Binomial(500, 0.2): mean 100, sd ≈ 8.9; ±36 is a false failure once in ~16,000 runs.
    expect(counts["v2-instance"], JSON.stringify(counts)).to.be.within(64, 136);
    expect(counts["v1-instance"] + counts["v2-instance"]).to.equal(N);

    // A weight of 0 sends nothing there.
    await rule({ subsets: SUBSETS, routes: [{ to: [{ subset: "stable", weight: 0 }, { subset: "canary", weight: 3 }] }] });
    for (let i = 0; i < 30; i++) expect((await hello()).by).to.equal("v2-instance");
  });

  it("sends a percentage of keys to a route: 30 % of 500 distinct users within 4 standard deviations, each user always on the same side", async () => {
    await rule({
      subsets: SUBSETS,
      sticky: { header: "x-user" },
      routes: [
        { name: "pilot", match: { percent: 30 }, to: [{ subset: "canary" }] },
        { name: "rest", to: [{ subset: "stable" }] },
      ],
    });
    const N = 500;
    const side = new Map<string, string>();
    for (let i = 0; i < N; i++) side.set(`user-${i}`, (await hello({ "x-user": `user-${i}` })).route!);
    const pilot = [...side.values()].filter((r) => r === "pilot").length;
    // Binomial(500, 0.3) over hashed keys: mean 150, sd ≈ 10.2; tolerance ±41.
    expect(pilot).to.be.within(109, 191);
    // The same key gets the same answer on every request.
    for (const user of ["user-0", "user-1", "user-2", "user-3", "user-4", "user-5", "user-6", "user-7"]) {
      for (let i = 0; i < 5; i++) expect((await hello({ "x-user": user })).route, user).to.equal(side.get(user));
    }
  });

  it("sticky: the same key always reaches the same subset of a 50/50 split, by header or by JWT claim, and keys spread over both", async () => {
    await rule({ subsets: SUBSETS, sticky: { header: "x-user" }, routes: [{ to: [{ subset: "stable", weight: 1 }, { subset: "canary", weight: 1 }] }] });
    const first = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      for (let u = 0; u < 40; u++) {
        const got = (await hello({ "x-user": `u${u}` })).by;
        if (round === 0) first.set(`u${u}`, got);
        else expect(got, `u${u} round ${round}`).to.equal(first.get(`u${u}`));
      }
    }
    expect(new Set(first.values())).to.deep.equal(new Set(["v1-instance", "v2-instance"]));

    await rule(
      { subsets: SUBSETS, sticky: { attribute: "jwt.sub" }, routes: [{ to: [{ subset: "stable", weight: 1 }, { subset: "canary", weight: 1 }] }] },
      { methods: { [HELLO]: { auth: "jwt" } }, jwt: { secret: SECRET } },
      { authorization: `Bearer ${await token({ sub: "probe" })}` },
    );
    const bySub = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 30; u++) {
        // A fresh token each time (other iat/claims): only the sub decides.
        const got = (await hello({ authorization: `Bearer ${await token({ sub: `s${u}`, n: round })}` })).by;
        if (round === 0) bySub.set(`s${u}`, got);
        else expect(got, `s${u} round ${round}`).to.equal(bySub.get(`s${u}`));
      }
    }
    expect(new Set(bySub.values())).to.deep.equal(new Set(["v1-instance", "v2-instance"]));
  });

  it("a subset with no instance (fallback: fail) is 503 `no upstream instance for this request` with the request id; the service, subset and reason are only in the log", async () => {
    await rule({ subsets: SUBSETS, routes: [{ name: "everyone", to: [{ subset: "stable" }] }] });
    gw.gateway.setPolicy({ traffic: { [SERVICE]: { subsets: { blue: { labels: { version: "v3" } } }, routes: [{ name: "all-blue", to: [{ subset: "blue" }] }], fallback: "fail" } } });
    const res = await fetch(`${gw.url}/v1/hello/a`);
    const text = await res.text();
    expect(res.status, text).to.equal(503);
    const requestId = res.headers.get("x-request-id");
    expect(JSON.parse(text)).to.deep.equal({ code: 14, message: "no upstream instance for this request", details: [{ "@type": "type.googleapis.com/google.protobuf.Value", value: { requestId } }] });
    for (const internal of [SERVICE, "blue", "v3", "READY"]) expect(text).to.not.include(internal);
    const logged = log.matching("no upstream instance").filter((e) => e.fields.requestId === requestId);
    expect(logged).to.have.length(1);
    expect(logged[0].level).to.equal("warn");
    expect(logged[0].fields).to.include({ service: SERVICE, route: "all-blue", subset: "blue" });
    expect(String(logged[0].fields.reason)).to.match(/subset "blue" has no READY instance/);
  });
});
