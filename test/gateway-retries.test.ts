import { expect } from "chai";
import { createJsonLogger, RpcError, Status, type Server } from "protomesh";
import { PolicyStore, PolicyValidationError, type Gateway, type GatewayPolicy } from "../gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { startGateway, startHttpGreeter } from "./helpers/gateway";
import { waitFor } from "./helpers/wait";

const HELLO = "examples.gateway.v1.HttpGreeter.SayHello";
const STREAM = "examples.gateway.v1.HttpGreeter.StreamHellos";

describe("gateway route retries (idempotent methods only)", function () {
  this.timeout(60_000);
  const etcd = useEmbeddedEtcd();
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };
  let store: PolicyStore;
  /** Calls the greeter saw, and how many of the next ones fail with UNAVAILABLE. */
  let calls = 0;
  let failNext = 0;
  let streamCalls = 0;

  async function apply(policy: GatewayPolicy): Promise<void> {
    const rec = await store.write(policy, { comment: "retry test" });
    await waitFor(() => gw.gateway.policy.version === rec.version, { timeoutMs: 10_000, what: `policy v${rec.version} applied` });
  }

  before(async () => {
    const namespace = uniqueNamespace();
    greeter = await startHttpGreeter({
      async sayHello(req, ctx) {
        calls++;
        if (failNext > 0) {
          failNext--;
          ctx.responseHeader.set("x-failed-attempt", String(calls));
          throw new RpcError(Status.UNAVAILABLE, "warming up");
        }
        ctx.responseHeader.set("x-served-attempt", String(calls));
        return { message: `Hello, ${req.name}!`, servedBy: "g1", at: new Date() };
      },
      async updateGreeting(req) {
        calls++;
        if (failNext > 0) {
          failNext--;
          throw new RpcError(Status.UNAVAILABLE, "warming up");
        }
        return { name: req.greeting?.name ?? "", text: req.greeting?.text ?? "", language: "" };
      },
      async *streamHellos(req) {
        streamCalls++;
        if (req.name === "early" && streamCalls === 1) throw new RpcError(Status.UNAVAILABLE, "not yet");
        yield { message: `Hello #1, ${req.name}!`, servedBy: "g1" };
        if (req.name === "late") throw new RpcError(Status.UNAVAILABLE, "gone mid-stream");
        yield { message: `Hello #2, ${req.name}!`, servedBy: "g1" };
      },
    });
    store = new PolicyStore({ endpoints: etcd.endpoints, namespace, env: "test" });
    gw = await startGateway(greeter.address, { etcd: { endpoints: etcd.endpoints, namespace }, env: "test", logger: createJsonLogger({ level: "silent" }) });
  });
  after(async () => {
    await gw?.gateway.close();
    store?.close();
    await greeter?.server.shutdown();
  });
  beforeEach(() => {
    calls = 0;
    failNext = 0;
    streamCalls = 0;
  });

  it("refuses bad retry settings, naming each problem", async () => {
    const bad = { methods: { [HELLO]: { retry: { attempts: 50, codes: ["DEADLINE_EXCEEDED"], backoffMs: 500, maxBackoffMs: 100, jitter: true } } } };
    try {
      await store.write(bad as unknown as GatewayPolicy);
      expect.fail("write should have failed");
    } catch (err) {
      expect(err).to.be.instanceOf(PolicyValidationError);
      const msg = (err as Error).message;
      expect(msg).to.contain(`methods["${HELLO}"].retry.attempts: must be an integer from 2 to 10`);
      expect(msg).to.contain(`retry.codes[0]: must be one of UNAVAILABLE`);
      expect(msg).to.contain("retry.maxBackoffMs: must be at least backoffMs");
      expect(msg).to.contain("retry.jitter: unknown field");
    }
    try {
      await store.write({ defaults: { retry: { backoffMs: 5 } } } as unknown as GatewayPolicy);
      expect.fail("write should have failed");
    } catch (err) {
      expect((err as Error).message).to.contain("defaults.retry.attempts: is required");
    }
    // Nothing was stored: the gateway still runs without retries.
    expect(gw.gateway.policy.value.defaults?.retry).to.equal(undefined);
  });

  it("without a retry policy an UNAVAILABLE upstream is a 503 after one call", async () => {
    failNext = 1;
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(503);
    expect(calls).to.equal(1);
  });

  it("a GET route is retried: the first two calls fail, the client sees 200", async () => {
    await apply({ defaults: { retry: { attempts: 3, backoffMs: 5 } } });
    failNext = 2;
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { message: string }).message).to.equal("Hello, Ada!");
    expect(calls).to.equal(3);
  });

  it("answers with the headers of the attempt that succeeded, none of a failed one", async () => {
    await apply({ defaults: { retry: { attempts: 3, backoffMs: 5 } } });
    failNext = 1;
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(200);
    expect(calls).to.equal(2);
    expect(res.headers.get("grpc-metadata-x-served-attempt")).to.equal("2");
    expect(res.headers.get("grpc-metadata-x-failed-attempt")).to.equal(null);
  });

  it("gives up after the attempt count and answers with the last failure", async () => {
    failNext = 5;
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(503);
    expect(((await res.json()) as { message: string }).message).to.contain("warming up");
    expect(calls).to.equal(3);
  });

  it("a POST binding of a method without an idempotency level is not retried", async () => {
    failNext = 1;
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Ada" }) });
    expect(res.status).to.equal(503);
    expect(calls).to.equal(1);
  });

  it("a PATCH of a method declared IDEMPOTENT in the proto is retried", async () => {
    failNext = 2;
    const res = await fetch(`${gw.url}/v1/greetings/g7`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "hi" }) });
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { text: string }).text).to.equal("hi");
    expect(calls).to.equal(3);
  });

  it("does not retry past the request's deadline", async () => {
    await apply({ defaults: { retry: { attempts: 5, backoffMs: 10_000, maxBackoffMs: 10_000 } } });
    failNext = 5;
    // The first wait (at least 5 s) would end past a 2 s deadline: the gateway answers with the failure at once
    // (a gateway that slept anyway would call again with the deadline gone and answer 504).
    const res = await fetch(`${gw.url}/v1/hello/Ada`, { headers: { "x-request-timeout": "2s" } });
    expect(res.status).to.equal(503);
    expect(calls).to.equal(1);
  });

  it("a server stream is retried before its first message, never after it", async () => {
    await apply({ methods: { [STREAM]: { retry: { attempts: 3, backoffMs: 5 } } } });
    const early = await fetch(`${gw.url}/v1/hello/early/stream`);
    expect(early.status).to.equal(200);
    expect((await early.text()).trim().split("\n")).to.have.length(2);
    expect(streamCalls).to.equal(2);

    streamCalls = 0;
    const late = await fetch(`${gw.url}/v1/hello/late/stream`);
    expect(late.status).to.equal(200);
    const lines = (await late.text()).trim().split("\n").map((l) => JSON.parse(l) as { result?: unknown; error?: { code: number } });
    expect(lines).to.have.length(2);
    expect(lines[1].error?.code).to.equal(Status.UNAVAILABLE);
    expect(streamCalls).to.equal(1);
  });
});
