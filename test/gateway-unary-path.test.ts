import { expect } from "chai";
import * as http from "node:http";
import { RpcError, Status, type Server } from "protomesh";
import type { Gateway } from "../gateway";
import { startGateway, startHttpGreeter } from "./helpers/gateway";
import { waitFor } from "./helpers/wait";

/**
 * The gateway's unary path (grpc-js callback API, no AbortController unless retries may
 * wait, no span work without a tracer provider) keeps every behaviour of the generic one:
 * response metadata as headers, error mapping, trace context passed on, and a client that
 * goes away cancels the upstream call.
 */
describe("gateway unary path", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };
  const started: string[] = [];
  const cancelled: string[] = [];
  const seen = new Map<string, { traceparent: unknown; requestId: unknown; forwardedProto: unknown; metadata: Record<string, unknown> }>();

  before(async () => {
    greeter = await startHttpGreeter({
      async sayHello(req, ctx) {
        seen.set(req.name, { traceparent: ctx.metadata.get("traceparent")[0], requestId: ctx.metadata.get("x-request-id")[0], forwardedProto: ctx.metadata.get("x-forwarded-proto")[0], metadata: ctx.metadata.getMap() });
        if (req.name === "nobody") throw new RpcError(Status.NOT_FOUND, "nobody is not here", { who: "nobody" });
        if (req.name === "headers-then-fail") {
          ctx.responseHeader.set("x-shard", "9");
          throw new RpcError(Status.UNAVAILABLE, "failed after its headers");
        }
        if (req.name === "hang") {
          started.push(req.name);
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          cancelled.push(req.name);
          throw new RpcError(Status.CANCELLED, "gone");
        }
        ctx.responseHeader.set("x-shard", "7");
        if (req.name === "trailed") ctx.responseTrailer.set("x-cost", "3");
        return { message: `Hello, ${req.name}!`, servedBy: "g1" };
      },
      async collectHellos(requests, ctx) {
        const names: string[] = [];
        for await (const r of requests) names.push(r.name);
        ctx.responseTrailer.set("x-cost", String(names.length));
        return { message: `Hello, ${names.join(", ")}!`, servedBy: "g1" };
      },
      async *streamHellos(req, ctx) {
        ctx.responseTrailer.set("x-cost", "1");
        for (let i = 0; i < (req.count || 1); i++) yield { message: `Hello #${i + 1}, ${req.name}!`, servedBy: "g1" };
      },
    });
    gw = await startGateway(greeter.address);
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  it("answers with the JSON body, the request id and the upstream's header metadata under the prefix", async () => {
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json", "x-request-id": "req-1" }, body: JSON.stringify({ name: "Ada" }) });
    expect(res.status).to.equal(200);
    expect(res.headers.get("x-request-id")).to.equal("req-1");
    expect(res.headers.get("grpc-metadata-x-shard")).to.equal("7");
    // The upstream's transport headers are not its metadata: none comes back under the prefix.
    const forwarded = [...res.headers.keys()].filter((k) => k.startsWith("grpc-metadata-"));
    expect(forwarded).to.deep.equal(["grpc-metadata-x-shard"]);
    expect(((await res.json()) as { message: string }).message).to.equal("Hello, Ada!");
    expect(seen.get("Ada")).to.deep.include({ requestId: "req-1", forwardedProto: "http" });
  });

  it("maps an upstream error to its HTTP status with the google.rpc.Status body and details", async () => {
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "nobody" }) });
    expect(res.status).to.equal(404);
    const body = (await res.json()) as { code: number; message: string; details: unknown[] };
    expect(body.code).to.equal(Status.NOT_FOUND);
    expect(body.message).to.equal("nobody is not here");
    expect(JSON.stringify(body.details)).to.contain("nobody");
  });

  it("returns the request id on error answers too, the client's or a fresh one", async () => {
    const failed = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json", "x-request-id": "req-2" }, body: JSON.stringify({ name: "nobody" }) });
    expect(failed.status).to.equal(404);
    expect(failed.headers.get("x-request-id")).to.equal("req-2");
    const fresh = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "nobody" }) });
    expect(fresh.headers.get("x-request-id")).to.match(/^[0-9a-f-]{36}$/);
    const noRoute = await fetch(`${gw.url}/v1/nowhere`, { headers: { "x-request-id": "req-3" } });
    expect(noRoute.status).to.equal(404);
    expect(noRoute.headers.get("x-request-id")).to.equal("req-3");
  });

  it("returns the request id on every kind of answer: retried unary, server stream, client stream, CORS preflight", async () => {
    const policied = await startGateway(greeter.address, {
      policy: {
        defaults: { retry: { attempts: 2 }, cors: { allowOrigins: ["https://app.example"] } },
      },
    });
    try {
      const id = (n: number) => ({ "x-request-id": `kind-${n}` });
      // GET binding + retry policy: the retrying unary path.
      const retried = await fetch(`${policied.url}/v1/hello/Ada`, { headers: id(1) });
      expect(retried.status).to.equal(200);
      expect(retried.headers.get("x-request-id")).to.equal("kind-1");
      const stream = await fetch(`${policied.url}/v1/hello/Eve/stream?count=2`, { headers: id(2) });
      expect(stream.status).to.equal(200);
      expect(stream.headers.get("x-request-id")).to.equal("kind-2");
      expect((await stream.text()).trim().split("\n")).to.have.length(2);
      const collect = await fetch(`${policied.url}/v1/hellos:collect`, { method: "POST", headers: { ...id(3), "content-type": "application/json" }, body: JSON.stringify([{ name: "a" }, { name: "b" }]) });
      expect(collect.status).to.equal(200);
      expect(collect.headers.get("x-request-id")).to.equal("kind-3");
      const preflight = await fetch(`${policied.url}/v1/hello/Ada`, { method: "OPTIONS", headers: { ...id(4), origin: "https://app.example", "access-control-request-method": "GET" } });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers.get("x-request-id")).to.equal("kind-4");
      expect(preflight.headers.get("access-control-allow-origin")).to.equal("https://app.example");
    } finally {
      await policied.gateway.close();
    }
  });

  it("passes the trailers of a unary answer as headers under the same prefix (fast, retried and client-streaming paths)", async () => {
    const fast = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "trailed" }) });
    expect(fast.status).to.equal(200);
    expect(fast.headers.get("grpc-metadata-x-shard")).to.equal("7");
    expect(fast.headers.get("grpc-metadata-x-cost")).to.equal("3");
    // The protocol's own trailers (grpc-status, grpc-message) are not passed on.
    expect([...fast.headers.keys()].filter((k) => k.startsWith("grpc-metadata-")).sort()).to.deep.equal(["grpc-metadata-x-cost", "grpc-metadata-x-shard"]);
    const policied = await startGateway(greeter.address, { policy: { defaults: { retry: { attempts: 2 } } } });
    try {
      const retried = await fetch(`${policied.url}/v1/hello/trailed`);
      expect(retried.status).to.equal(200);
      expect(retried.headers.get("grpc-metadata-x-cost")).to.equal("3");
    } finally {
      await policied.gateway.close();
    }
    const collect = await fetch(`${gw.url}/v1/hellos:collect`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([{ name: "a" }, { name: "b" }]) });
    expect(collect.status).to.equal(200);
    expect(collect.headers.get("grpc-metadata-x-cost")).to.equal("2");
    // A server stream's head is sent before its trailers exist: they are not forwarded.
    const stream = await fetch(`${gw.url}/v1/hello/Eve/stream`);
    expect(stream.status).to.equal(200);
    expect(stream.headers.get("grpc-metadata-x-cost")).to.equal(null);
    expect((await stream.text()).trim().split("\n")).to.have.length(1);
  });

  it("passes the header metadata an upstream sent before failing on the error answer", async () => {
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "headers-then-fail" }) });
    expect(res.status).to.equal(503);
    expect(res.headers.get("grpc-metadata-x-shard")).to.equal("9");
  });

  it("forwards only the route's forwardHeaders, Authorization only with forwardToken, and X-Forwarded-For/-Host", async () => {
    const policied = await startGateway(greeter.address, { policy: { defaults: { forwardHeaders: ["x-tenant"] } } });
    try {
      const port = new URL(policied.url).port;
      const headers = { "content-type": "application/json", "x-tenant": "acme", "x-user-id": "smuggled", authorization: "Bearer abc.def.ghi", "x-forwarded-for": "203.0.113.9" };
      const call = async (name: string) => {
        const res = await fetch(`${policied.url}/v1/hello`, { method: "POST", headers, body: JSON.stringify({ name }) });
        expect(res.status).to.equal(200);
        return seen.get(name)!.metadata;
      };
      const md = await call("fwd-1");
      expect(md["x-tenant"]).to.equal("acme");
      expect(md).not.to.have.property("x-user-id");
      expect(md).not.to.have.property("authorization");
      // The client's chain, then the socket peer; the Host the client addressed.
      expect(md["x-forwarded-for"]).to.equal("203.0.113.9, 127.0.0.1");
      expect(md["x-forwarded-host"]).to.equal(`127.0.0.1:${port}`);
      expect(md["x-forwarded-proto"]).to.equal("http");
      policied.gateway.setPolicy({ defaults: { forwardHeaders: ["x-tenant"], forwardToken: true } });
      const withToken = await call("fwd-2");
      expect(withToken.authorization).to.equal("Bearer abc.def.ghi");
      expect(withToken["x-tenant"]).to.equal("acme");
      expect(withToken).not.to.have.property("x-user-id");
    } finally {
      await policied.gateway.close();
    }
  });

  it("sets CORS headers on a real cross-origin answer (errors too) for an allowed origin, and none for another", async () => {
    const policied = await startGateway(greeter.address, {
      policy: { defaults: { cors: { allowOrigins: ["https://app.example"], allowCredentials: true, exposeHeaders: ["grpc-metadata-x-shard"] } } },
    });
    try {
      const call = (origin: string, name: string) => fetch(`${policied.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json", origin }, body: JSON.stringify({ name }) });
      for (const [name, status] of [["Ada", 200], ["nobody", 404]] as const) {
        const res = await call("https://app.example", name);
        expect(res.status, name).to.equal(status);
        expect(res.headers.get("access-control-allow-origin"), name).to.equal("https://app.example");
        expect(res.headers.get("access-control-allow-credentials"), name).to.equal("true");
        expect(res.headers.get("vary"), name).to.equal("Origin");
        expect(res.headers.get("access-control-expose-headers")?.split(", "), name).to.include.members(["x-request-id", "grpc-metadata-x-shard"]);
      }
      const other = await call("https://evil.example", "Ada");
      // Served (the browser is the one to withhold it), but with nothing that lets the page read it.
      expect(other.status).to.equal(200);
      expect([...other.headers.keys()].filter((k) => k.startsWith("access-control-"))).to.deep.equal([]);
    } finally {
      await policied.gateway.close();
    }
  });

  it("without a tracer provider, passes the client's traceparent upstream untouched", async () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json", traceparent }, body: JSON.stringify({ name: "traced" }) });
    expect(res.status).to.equal(200);
    expect(seen.get("traced")?.traceparent).to.equal(traceparent);
  });

  it("cancels the upstream call when the client disconnects before the answer", async () => {
    const port = Number(new URL(gw.url).port);
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/hello", method: "POST", headers: { "content-type": "application/json" } });
    req.on("error", () => undefined);
    req.end(JSON.stringify({ name: "hang" }));
    await waitFor(() => started.includes("hang"), { timeoutMs: 10_000, what: "the upstream call to start" });
    req.destroy();
    await waitFor(() => cancelled.includes("hang"), { timeoutMs: 10_000, what: "the upstream call to be cancelled" });
  });

  it("still serves after a cancelled call", async () => {
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "again" }) });
    expect(res.status).to.equal(200);
  });
});
