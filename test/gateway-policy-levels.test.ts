import { expect } from "chai";
import { SignJWT } from "jose";
import type { CallContext, Server } from "protomesh";
import type { Gateway } from "../gateway";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { startGateway, startHttpGreeter } from "./helpers/gateway";

/**
 * Policy levels: a `services["pkg.Service"]` setting applies to every route of
 * that service, over `defaults`; a `methods["pkg.Service.Method"]` setting
 * overrides it for one method, key by key (the keys it does not set still come
 * from the service). Checked through a real gateway: auth by the status, the
 * timeout by the deadline the upstream handler sees.
 */

const SECRET = "a-test-secret-of-enough-length";
const SERVICE = "examples.gateway.v1.HttpGreeter";

describe("gateway policy levels: defaults, then service, then method", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };
  /** Milliseconds left before the deadline, as each upstream method saw it last. */
  const remaining = new Map<string, number>();

  before(async () => {
    const base = httpGreeterHandlers("g1");
    const seen = (name: string, ctx: CallContext) => remaining.set(name, ctx.remainingMs() ?? -1);
    greeter = await startHttpGreeter({
      sayHello: (req, ctx) => (seen("SayHello", ctx), base.sayHello(req, ctx)),
      getGreeting: (req, ctx) => (seen("GetGreeting", ctx), base.getGreeting(req, ctx)),
      echo: (req, ctx) => (seen("Echo", ctx), base.echo(req, ctx)),
    });
    gw = await startGateway(greeter.address);
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  const token = () => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("lv").setExpirationTime("5m").sign(new TextEncoder().encode(SECRET));

  /** Status of each of three routes of the service, without credentials. */
  async function statuses(headers: Record<string, string> = {}): Promise<Record<string, number>> {
    const get = async (p: string) => (await fetch(`${gw.url}${p}`, { headers })).status;
    return { SayHello: await get("/v1/hello/a"), GetGreeting: await get("/v1/greetings/a/text"), Echo: await get("/v1/echo/a/b") };
  }

  it("a service-level auth setting covers every route of the service; a method-level one overrides it for that method", async () => {
    gw.gateway.setPolicy({ defaults: { auth: "none" }, services: { [SERVICE]: { auth: "jwt" } }, jwt: { secret: SECRET } });
    expect(await statuses()).to.deep.equal({ SayHello: 401, GetGreeting: 401, Echo: 401 });
    expect(await statuses({ authorization: `Bearer ${await token()}` })).to.deep.equal({ SayHello: 200, GetGreeting: 200, Echo: 200 });

    gw.gateway.setPolicy({ services: { [SERVICE]: { auth: "jwt" } }, methods: { [`${SERVICE}.SayHello`]: { auth: "none" } }, jwt: { secret: SECRET } });
    expect(await statuses()).to.deep.equal({ SayHello: 200, GetGreeting: 401, Echo: 401 });

    // Another service's settings touch none of these routes; the defaults apply to them.
    gw.gateway.setPolicy({ defaults: { auth: "none" }, services: { "other.v1.Service": { auth: "jwt" } }, jwt: { secret: SECRET } });
    expect(await statuses()).to.deep.equal({ SayHello: 200, GetGreeting: 200, Echo: 200 });
  });

  it("a service-level timeout is every route's deadline over the default; a method-level one overrides it, keeping the service's other keys", async () => {
    const deadlines = async (headers: Record<string, string> = {}) => {
      remaining.clear();
      const codes = await statuses(headers);
      expect([...remaining.keys()]).to.have.members(["SayHello", "GetGreeting", "Echo"]);
      return { codes, seen: Object.fromEntries(remaining) };
    };
    gw.gateway.setPolicy({ defaults: { timeoutMs: 20_000 }, services: { [SERVICE]: { timeoutMs: 3000 } } });
    const svc = await deadlines();
    expect(svc.codes).to.deep.equal({ SayHello: 200, GetGreeting: 200, Echo: 200 });
    for (const [m, left] of Object.entries(svc.seen)) expect(left, m).to.be.within(1, 3000);

    gw.gateway.setPolicy({
      defaults: { timeoutMs: 20_000 },
      services: { [SERVICE]: { timeoutMs: 3000, auth: "jwt" } },
      methods: { [`${SERVICE}.Echo`]: { timeoutMs: 9000 } },
      jwt: { secret: SECRET },
    });
    const mixed = await deadlines({ authorization: `Bearer ${await token()}` });
    expect(mixed.codes).to.deep.equal({ SayHello: 200, GetGreeting: 200, Echo: 200 });
    expect(mixed.seen.SayHello).to.be.within(1, 3000);
    expect(mixed.seen.GetGreeting).to.be.within(1, 3000);
    expect(mixed.seen.Echo).to.be.within(3001, 9000);
    // Echo's own entry sets only the timeout: auth still comes from the service.
    expect((await statuses()).Echo).to.equal(401);

    // Without a service entry, the defaults hold.
    gw.gateway.setPolicy({ defaults: { timeoutMs: 20_000 } });
    const defaults = await deadlines();
    for (const [m, left] of Object.entries(defaults.seen)) expect(left, m).to.be.within(9001, 20_000);
  });
});
