import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { RpcError, Status, type Server } from "protomesh";
import { createGateway, type Gateway } from "../gateway";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { HttpGreeterDefinition, rawHttp, startGateway, startHttpGreeter, startRegisteredGreeter } from "./helpers/gateway";
import { VALUE_TYPE_URL } from "../gateway/http-errors";
import { captureLogger } from "./helpers/capture-logger";
import { waitFor } from "./helpers/wait";

const ECHO = "examples.gateway.v1.HttpGreeter.Echo";

interface StatusBody {
  code: number;
  message: string;
  details: unknown[];
}

/** No IP address or host:port in `text` (internal addresses stay in the log). */
function noAddressIn(text: string): void {
  expect(text).not.to.match(/\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/);
  expect(text).not.to.match(/(localhost|\]):\d+/);
  expect(text).not.to.match(/remote_addr|ECONNREFUSED/);
}

async function failure(res: Response): Promise<StatusBody> {
  expect(res.headers.get("content-type")).to.equal("application/json");
  const body = JSON.parse(await res.text()) as StatusBody;
  expect(body).to.have.keys("code", "message", "details");
  return body;
}

describe("gateway bad input (every refusal is a google.rpc.Status JSON body; nothing crashes)", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string; port: number };
  const aborted: string[] = [];
  const log = captureLogger();

  before(async () => {
    greeter = await startHttpGreeter({
      async sayHello(req, ctx) {
        if (req.name === "slow") await new Promise((r) => setTimeout(r, 5_000).unref());
        if (req.name === "boom") throw new Error("secret internal detail");
        if (req.name === "down") throw new RpcError(Status.UNAVAILABLE, "billing db is down", { retryInMs: 100 });
        if (req.name === "late") throw new RpcError(Status.DEADLINE_EXCEEDED, "the ledger did not answer in time");
        if (req.name === "headed") {
          ctx.responseHeader.set("x-shard", "7");
          throw new RpcError(Status.UNAVAILABLE, "shard 7 is rebalancing");
        }
        return { message: `Hello, ${req.name}!`, servedBy: String(ctx.deadline ?? "") };
      },
      async *streamHellos(req, ctx) {
        for (let i = 0; i < 1000; i++) {
          if (ctx.signal.aborted) {
            aborted.push(req.name);
            return;
          }
          yield { message: `#${i}` };
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    });
    const started = await startGateway(greeter.address, {
      logger: log,
      headersTimeoutMs: 800,
      requestTimeoutMs: 1500,
      maxHeaderBytes: 2048,
      policy: {
        defaults: { maxBodyBytes: 1024, maxTimeoutMs: 5000 },
        methods: { "examples.gateway.v1.HttpGreeter.Echo": { unknownQueryParams: "reject" } },
      },
    });
    gw = { ...started, port: Number(new URL(started.url).port) };
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  const post = (path: string, body: string, type = "application/json") => fetch(`${gw.url}${path}`, { method: "POST", body, headers: { "content-type": type } });

  it("refuses malformed JSON with 400", async () => {
    const res = await post("/v1/hello", '{"name": ');
    expect(res.status).to.equal(400);
    expect((await failure(res)).message).to.match(/malformed JSON body/);
  });

  it("refuses a body of the wrong JSON type with 400", async () => {
    const res = await post("/v1/hello", '["x"]');
    expect(res.status).to.equal(400);
    expect((await failure(res)).message).to.match(/must be a JSON object/);
    const wrongField = await post("/v1/hello", '{"name": 5}');
    expect(wrongField.status).to.equal(400);
    expect((await failure(wrongField)).message).to.match(/name/);
  });

  it("refuses a 64-bit integer out of range, an unknown enum name and an invalid Timestamp with 400", async () => {
    for (const q of ["big=9223372036854775808", "mood=MOOD_SLEEPY", "when=2026-13-01T00:00:00Z", "flag=maybe", "ratio=abc"]) {
      const res = await fetch(`${gw.url}/v1/echo/a/b?${q}`);
      expect(res.status, q).to.equal(400);
      expect((await failure(res)).code, q).to.equal(Status.INVALID_ARGUMENT);
    }
  });

  it("names an unknown query parameter when the route rejects them, and ignores it elsewhere", async () => {
    const res = await fetch(`${gw.url}/v1/echo/a/b?colour=red`);
    expect(res.status).to.equal(400);
    expect((await failure(res)).message).to.contain('"colour"');
    const ignored = await fetch(`${gw.url}/v1/hello/Ada?colour=red`);
    expect(ignored.status).to.equal(200);
  });

  it("refuses paths that decode to .. or put %2F in a single segment", async () => {
    for (const path of ["/v1/hello/%2E%2E", "/v1/hello/a%2Fb", "/v1/files/a/%2e%2e/etc"]) {
      const res = await rawHttp(gw.port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      expect(res.status, path).to.equal(400);
      expect((JSON.parse(res.body) as StatusBody).code).to.equal(Status.INVALID_ARGUMENT);
    }
  });

  it("answers an unknown path 404, a wrong method 405 with Allow, a wrong content type 415", async () => {
    const missing = await fetch(`${gw.url}/v2/nothing`);
    expect(missing.status).to.equal(404);
    expect((await failure(missing)).code).to.equal(Status.NOT_FOUND);
    const wrong = await fetch(`${gw.url}/v1/hello/Ada`, { method: "DELETE" });
    expect(wrong.status).to.equal(405);
    expect(wrong.headers.get("allow")).to.equal("GET");
    await failure(wrong);
    const type = await post("/v1/hello", "name=x", "application/x-www-form-urlencoded");
    expect(type.status).to.equal(415);
    await failure(type);
  });

  it("ignores X-HTTP-Method-Override unless switched on", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Ada`, { method: "POST", headers: { "x-http-method-override": "GET" } });
    expect(res.status).to.equal(405);
  });

  it("answers a body over the limit with 413 and closes the connection instead of reading on", async () => {
    const big = JSON.stringify({ name: "x".repeat(5000) });
    const res = await post("/v1/hello", big);
    expect(res.status).to.equal(413);
    await failure(res);
    // Chunked, with no Content-Length: the limit still holds while reading.
    const chunked = await rawHttp(gw.port, `POST /v1/hello HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1000\r\n${"x".repeat(4096)}\r\n1000\r\n${"x".repeat(4096)}\r\n`);
    expect(chunked.status).to.equal(413);
    expect(chunked.headers.connection).to.equal("close");
  });

  it("answers oversized headers with 431 in the same JSON shape", async () => {
    const res = await rawHttp(gw.port, `GET /v1/hello/a HTTP/1.1\r\nhost: x\r\nx-big: ${"y".repeat(4096)}\r\n\r\n`);
    expect(res.status).to.equal(431);
    expect((JSON.parse(res.body) as StatusBody).code).to.equal(Status.RESOURCE_EXHAUSTED);
  });

  it("cuts off a slow-loris client that never finishes its headers", async () => {
    const started = Date.now();
    const res = await rawHttp(gw.port, "GET /v1/hello/a HTTP/1.1\r\nhost: x\r\n");
    expect(res.status).to.equal(408);
    expect(Date.now() - started).to.be.below(10_000);
  });

  it("cuts off a client that sends its headers and then the body too slowly: 408 after requestTimeoutMs, connection closed", async () => {
    const started = Date.now();
    // Headers at once, then a body that never completes: content-length promises 100 bytes, 9 come.
    const res = await rawHttp(gw.port, `POST /v1/hello HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"name": `);
    const took = Date.now() - started;
    expect(res.status).to.equal(408);
    expect(res.headers.connection).to.equal("close");
    expect((JSON.parse(res.body) as StatusBody).code).to.equal(Status.DEADLINE_EXCEEDED);
    // requestTimeoutMs is 1500 (checked on an interval of a quarter of headersTimeoutMs).
    expect(took).to.be.within(1400, 10_000);
  });

  it("caps the deadline the client asks for at the route's maxTimeoutMs", async () => {
    const capped = await startGateway(greeter.address, { policy: { defaults: { maxTimeoutMs: 1000 } } });
    try {
      const before = Date.now();
      const res = await fetch(`${capped.url}/v1/hello/a`, { headers: { "x-request-timeout": "30s" } });
      expect(res.status).to.equal(200);
      // The greeter answers with the deadline its call carried (epoch ms).
      const deadline = Number(((await res.json()) as { servedBy: string }).servedBy);
      expect(deadline - before).to.be.within(1, 1000 + 250);
      const uncapped = await fetch(`${gw.url}/v1/hello/a`, { headers: { "x-request-timeout": "3s" } });
      expect(Number(((await uncapped.json()) as { servedBy: string }).servedBy) - Date.now()).to.be.above(1500);
    } finally {
      await capped.gateway.close();
    }
  });

  it("answers 504 when the upstream is slower than the client's deadline, and 400 for a malformed grpc-timeout", async () => {
    const res = await fetch(`${gw.url}/v1/hello/slow`, { headers: { "x-request-timeout": "300ms" } });
    expect(res.status).to.equal(504);
    const requestId = res.headers.get("x-request-id")!;
    const body = await failure(res);
    expect(body.code).to.equal(Status.DEADLINE_EXCEEDED);
    // grpc-js's own text ("Deadline exceeded after 0.301s,remote_addr=127.0.0.1:…") stays in the log.
    expect(body.message).to.equal("upstream deadline exceeded");
    expect(body.details).to.deep.equal([{ "@type": VALUE_TYPE_URL, value: { requestId } }]);
    noAddressIn(JSON.stringify(body));
    const logged = log.matching("upstream call failed").find((e) => e.fields.requestId === requestId);
    expect(logged?.level).to.equal("warn");
    expect(String(logged?.fields.err)).to.match(/Deadline exceeded/);
    const bad = await fetch(`${gw.url}/v1/hello/a`, { headers: { "grpc-timeout": "soon" } });
    expect(bad.status).to.equal(400);
  });

  it("answers 500 without internals when the handler throws", async () => {
    const res = await fetch(`${gw.url}/v1/hello/boom`);
    expect(res.status).to.equal(500);
    expect(JSON.stringify(await failure(res))).not.to.contain("secret");
  });

  it("cancels the upstream stream when the client disconnects", async () => {
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/hello/leaver/stream`, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await waitFor(() => aborted.includes("leaver") || undefined, { timeoutMs: 10_000 });
  });

  it("answers 503 when the upstream is down", async () => {
    const downLog = captureLogger();
    const down = await startGateway(`127.0.0.1:${await deadPort()}`, { logger: downLog });
    try {
      const res = await fetch(`${down.url}/v1/hello/a`, { headers: { "x-request-timeout": "5s" } });
      expect(res.status).to.equal(503);
      const requestId = res.headers.get("x-request-id")!;
      const body = await failure(res);
      expect(body.code).to.equal(Status.UNAVAILABLE);
      // grpc-js's own text ("No connection established. Last error: … ECONNREFUSED 127.0.0.1:…") stays in the log.
      expect(body.message).to.equal("upstream unavailable");
      expect(body.details).to.deep.equal([{ "@type": VALUE_TYPE_URL, value: { requestId } }]);
      noAddressIn(JSON.stringify(body));
      const logged = downLog.matching("upstream call failed").find((e) => e.fields.requestId === requestId);
      expect(logged?.level).to.equal("warn");
      expect(String(logged?.fields.err)).to.match(/ECONNREFUSED/);
      // The same on the streaming path and, with retries, after the last attempt.
      const stream = await fetch(`${down.url}/v1/hello/a/stream`, { headers: { "x-request-timeout": "5s" } });
      expect(stream.status).to.equal(503);
      const streamBody = await failure(stream);
      expect(streamBody.message).to.equal("upstream unavailable");
      noAddressIn(JSON.stringify(streamBody));
      down.gateway.setPolicy({ defaults: { retry: { attempts: 2, backoffMs: 10 } } });
      const retried = await fetch(`${down.url}/v1/hello/a`, { headers: { "x-request-timeout": "5s" } });
      expect(retried.status).to.equal(503);
      const retriedBody = await failure(retried);
      expect(retriedBody.message).to.equal("upstream unavailable");
      noAddressIn(JSON.stringify(retriedBody));
    } finally {
      await down.gateway.close();
    }
  });

  it("passes on an UNAVAILABLE or DEADLINE_EXCEEDED the upstream service itself returned, with its message and details", async () => {
    const down = await fetch(`${gw.url}/v1/hello/down`);
    expect(down.status).to.equal(503);
    const body = await failure(down);
    expect(body.message).to.equal("billing db is down");
    expect(body.details).to.deep.equal([{ "@type": VALUE_TYPE_URL, value: { retryInMs: 100 } }]);
    const late = await fetch(`${gw.url}/v1/hello/late`, { headers: { "x-request-timeout": "5s" } });
    expect(late.status).to.equal(504);
    expect((await failure(late)).message).to.equal("the ledger did not answer in time");
    // Sent after the service's response headers rather than as a Trailers-Only response.
    const headed = await fetch(`${gw.url}/v1/hello/headed`);
    expect(headed.status).to.equal(503);
    expect(headed.headers.get("grpc-metadata-x-shard")).to.equal("7");
    expect((await failure(headed)).message).to.equal("shard 7 is rebalancing");
  });

  it("ends a stream cut by the deadline with a generic error frame, not grpc-js's text", async () => {
    const res = await fetch(`${gw.url}/v1/hello/deadline/stream`, { headers: { "x-request-timeout": "400ms" } });
    expect(res.status).to.equal(200);
    const requestId = res.headers.get("x-request-id")!;
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { result?: unknown; error?: StatusBody });
    expect(lines[0].result).to.not.equal(undefined);
    const last = lines[lines.length - 1].error;
    expect(last?.code).to.equal(Status.DEADLINE_EXCEEDED);
    expect(last?.message).to.equal("upstream deadline exceeded");
    noAddressIn(JSON.stringify(lines));
    expect(log.matching("upstream call failed").some((e) => e.fields.requestId === requestId)).to.equal(true);
  });

  it("answers 500 with a logged reason when the upstream's reply cannot be converted", async () => {
    const server = new grpc.Server();
    const path = HttpGreeterDefinition.methods.sayHello.path;
    server.addService(
      { sayHello: { path, requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
      { sayHello: (_call: unknown, cb: (e: null, v: Buffer) => void) => cb(null, Buffer.from([0x0a, 0xff, 0xff, 0xff])) },
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const brokenLog = captureLogger();
    const broken = await startGateway(`127.0.0.1:${port}`, { logger: brokenLog });
    try {
      const res = await fetch(`${broken.url}/v1/hello/a`);
      expect(res.status).to.equal(500);
      const body = await failure(res);
      expect(body.code).to.equal(Status.INTERNAL);
      expect(body.message).to.equal("internal error");
      // The reason (the protobuf decoder's) is in the log line, with the request id the caller got.
      const requestId = res.headers.get("x-request-id");
      const logged = brokenLog.matching("gateway: request failed");
      expect(logged).to.have.length(1);
      expect(logged[0].level).to.equal("error");
      expect(logged[0].fields.requestId).to.equal(requestId);
      expect(String(logged[0].fields.err)).to.match(/premature EOF/);
    } finally {
      await broken.gateway.close();
      server.forceShutdown();
    }
  });

  it("answers a JWT cookie that cannot be percent-decoded 401 invalid_token, like any bad token", async () => {
    const guarded = await startGateway(greeter.address, {
      policy: { methods: { [ECHO]: { auth: "jwt" } }, jwt: { secret: "a-test-secret-of-enough-length", cookie: "jwt", queryParam: "access_token" } },
    });
    try {
      const res = await fetch(`${guarded.url}/v1/echo/a/b`, { headers: { cookie: "jwt=%E0%A4%A" } });
      expect(res.status).to.equal(401);
      expect(res.headers.get("www-authenticate")).to.match(/^Bearer realm="protomesh", error="invalid_token"/);
      expect((await failure(res)).code).to.equal(Status.UNAUTHENTICATED);
      // The same bytes as the query token: the query string itself is malformed, 400 before any authentication.
      const query = await fetch(`${guarded.url}/v1/echo/a/b?access_token=%E0%A4%A`);
      expect(query.status).to.equal(400);
      expect((await failure(query)).message).to.match(/malformed percent-escape in query parameter/);
    } finally {
      await guarded.gateway.close();
    }
  });

  it("still serves after all of the above", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(200);
    expect(new RpcError(Status.OK, "").code).to.equal(0);
  });
});

describe("gateway bad input under a traffic rule (real etcd, registered instances)", function () {
  this.timeout(60_000);
  let registry: EtcdRegistry;
  let gateway: Gateway | undefined;
  const servers: Server[] = [];
  // Registered before the etcd fixture's own hook, so it runs first: instances leave while etcd is up.
  after(async () => {
    await gateway?.close();
    for (const s of servers) await s.shutdown();
    await registry?.close();
  });
  const etcd = useEmbeddedEtcd();

  before(async () => {
    const namespace = uniqueNamespace();
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    for (const [servedBy, version] of [["stable-instance", "v1"], ["canary-instance", "v2"]]) {
      servers.push(await startRegisteredGreeter(registry, "http-greeter", servedBy, version));
    }
    gateway = await createGateway({ etcd: { endpoints: etcd.endpoints, namespace }, upstreams: [{ target: "etcd:///http-greeter", definitions: [HttpGreeterDefinition] }], accessLog: false });
    gateway.setPolicy({
      traffic: {
        "http-greeter": {
          subsets: { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } },
          routes: [
            { name: "beta-cookie", match: { attributes: { "cookie.beta": "1" } }, to: [{ subset: "canary" }] },
            { name: "everyone", to: [{ subset: "stable" }] },
          ],
        },
      },
    });
  });

  let url: string | undefined;
  /** Which instance served GET /v1/hello/a with this Cookie header, and under which route. */
  async function servedBy(cookie: string): Promise<{ by: string; route: string | null }> {
    url ??= `http://127.0.0.1:${await gateway!.listen(0)}`;
    const r = await fetch(`${url}/v1/hello/a`, { headers: { cookie } });
    expect(r.status, cookie).to.equal(200);
    return { by: ((await r.json()) as { servedBy: string }).servedBy, route: r.headers.get("x-protomesh-route") };
  }

  it("treats a cookie.* value that cannot be percent-decoded as absent (the rule's other routes apply)", async () => {
    await waitFor(async () => (await servedBy("beta=1")).by === "canary-instance", { timeoutMs: 15_000, what: "canary reachable" });
    expect(await servedBy("a=b; beta=%E0%A4%A")).to.deep.equal({ by: "stable-instance", route: "everyone" });
  });

  it("matches a cookie.* value written as a quoted string (RFC 6265 `name=\"value\"`) without its quotes", async () => {
    await waitFor(async () => (await servedBy("beta=1")).by === "canary-instance", { timeoutMs: 15_000, what: "canary reachable" });
    expect(await servedBy('a=b; beta="1"')).to.deep.equal({ by: "canary-instance", route: "beta-cookie" });
    // Quoted and percent-encoded: the quotes go first, then the escapes are decoded.
    expect(await servedBy('beta="%31"')).to.deep.equal({ by: "canary-instance", route: "beta-cookie" });
    expect(await servedBy('beta=""1""')).to.deep.equal({ by: "stable-instance", route: "everyone" });
  });
});
