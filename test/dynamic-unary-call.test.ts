import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, type DescMethod, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { RpcError, Status, type Server } from "protomesh";
import { dynamicCall, startUnaryCall, type DynamicCallOptions } from "../runtime/dynamic-call";
import { filesFromDescriptors } from "../gateway";
import { HttpGreeterDefinition, startHttpGreeter } from "./helpers/gateway";
import { waitFor } from "./helpers/wait";

/**
 * `startUnaryCall` (grpc-js's callback API, used by the gateway for unary routes) against
 * `dynamicCall` (the generic async-generator path) on the same live server: same answers,
 * errors, headers and trailers; cancellation reaches the server.
 */
describe("dynamic unary call: the callback fast path answers like the generic path", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let client: grpc.Client;
  let service: DescService;
  const started: string[] = [];
  const cancelled: string[] = [];

  before(async () => {
    greeter = await startHttpGreeter({
      async sayHello(req, ctx) {
        if (req.name === "nobody") throw new RpcError(Status.NOT_FOUND, "nobody is not here", { who: "nobody" });
        if (req.name.startsWith("hang")) {
          started.push(req.name);
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          cancelled.push(req.name);
          throw new RpcError(Status.CANCELLED, "gone");
        }
        ctx.responseHeader.set("x-served-header", `h-${req.name}`);
        ctx.responseTrailer.set("x-served-trailer", `t-${req.name}`);
        return { message: `Hello, ${req.name}!`, servedBy: req.name === "quiet" ? "" : "g1" };
      },
    });
    client = new grpc.Client(greeter.address, grpc.credentials.createInsecure());
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: filesFromDescriptors(HttpGreeterDefinition.descriptors) }));
    service = registry.getService("examples.gateway.v1.HttpGreeter")!;
  });
  after(async () => {
    client?.close();
    await greeter?.server.shutdown();
  });

  const sayHello = (): DescMethod => service.methods.find((m) => m.name === "SayHello")!;

  interface Outcome {
    value?: JsonValue;
    error?: { code: number; message: string; details: unknown };
    header?: string;
    trailer?: string;
  }

  async function viaGenerator(request: JsonValue, options: DynamicCallOptions = {}): Promise<Outcome> {
    const out: Outcome = {};
    try {
      for await (const v of dynamicCall(client, sayHello(), [request], hooks(out, options))) out.value = v;
    } catch (err) {
      out.error = summary(err);
    }
    return out;
  }

  async function viaFastPath(request: JsonValue, options: DynamicCallOptions = {}): Promise<Outcome> {
    const out: Outcome = {};
    try {
      out.value = await startUnaryCall(client, sayHello(), request, hooks(out, options)).response;
    } catch (err) {
      out.error = summary(err);
    }
    return out;
  }

  function hooks(out: Outcome, options: DynamicCallOptions): DynamicCallOptions {
    return {
      deadline: Date.now() + 10_000,
      ...options,
      onHeader: (md) => (out.header = String(md.get("x-served-header")[0] ?? "")),
      onTrailer: (md) => (out.trailer = String(md.get("x-served-trailer")[0] ?? "")),
    };
  }

  function summary(err: unknown): Outcome["error"] {
    expect(err).to.be.instanceOf(RpcError);
    const e = err as RpcError;
    return { code: e.code, message: e.rawMessage, details: e.details };
  }

  it("returns the same JSON, response headers and trailers", async () => {
    const fast = await viaFastPath({ name: "Ada" });
    expect(fast.value).to.deep.include({ message: "Hello, Ada!", servedBy: "g1" });
    expect(fast.header).to.equal("h-Ada");
    expect(fast.trailer).to.equal("t-Ada");
    expect(fast).to.deep.equal(await viaGenerator({ name: "Ada" }));
  });

  it("writes default values when asked, as the generic path does", async () => {
    expect((await viaFastPath({ name: "quiet" })).value).not.to.have.property("servedBy");
    const fast = await viaFastPath({ name: "quiet" }, { emitDefaults: true });
    expect(fast.value).to.have.property("servedBy", "");
    expect(fast).to.deep.equal(await viaGenerator({ name: "quiet" }, { emitDefaults: true }));
  });

  it("fails with the same RpcError (code, message, details) when the server refuses", async () => {
    const fast = await viaFastPath({ name: "nobody" });
    expect(fast.error?.code).to.equal(Status.NOT_FOUND);
    expect(fast.error?.message).to.equal("nobody is not here");
    expect(fast.value).to.equal(undefined);
    expect(fast.trailer, "no trailer hook on a failed call").to.equal(undefined);
    expect(fast).to.deep.equal(await viaGenerator({ name: "nobody" }));
  });

  it("refuses a request that is not valid JSON for the message with INVALID_ARGUMENT naming it, before any call", async () => {
    const fast = await viaFastPath({ name: 42 });
    expect(fast.error?.code).to.equal(Status.INVALID_ARGUMENT);
    expect(fast.error?.message).to.contain("examples.gateway.v1.HelloRequest");
    expect(fast).to.deep.equal(await viaGenerator({ name: 42 }));
  });

  it("cancel() stops the call on the server and rejects with CANCELLED", async () => {
    const call = startUnaryCall(client, sayHello(), { name: "hang" }, { deadline: Date.now() + 20_000 });
    const settled = call.response.then(
      () => undefined,
      (err: unknown) => err,
    );
    // Cancel only once the server is holding the call, so it is the server that sees the cancellation.
    await waitFor(() => started.includes("hang"), { timeoutMs: 10_000, what: "the server to start the call" });
    call.cancel();
    const err = await settled;
    expect(err).to.be.instanceOf(RpcError);
    expect((err as RpcError).code).to.equal(Status.CANCELLED);
    await waitFor(() => cancelled.includes("hang"), { timeoutMs: 10_000, what: "the server to see the cancellation" });
  });

  it("an aborted signal cancels it too, and an already aborted one never starts it", async () => {
    const ac = new AbortController();
    const call = startUnaryCall(client, sayHello(), { name: "hang-signal" }, { deadline: Date.now() + 20_000, signal: ac.signal });
    await waitFor(() => started.includes("hang-signal"), { timeoutMs: 10_000, what: "the server to start the call" });
    ac.abort();
    const err = await call.response.then(() => undefined, (e: unknown) => e);
    expect((err as RpcError).code).to.equal(Status.CANCELLED);
    await waitFor(() => cancelled.includes("hang-signal"), { timeoutMs: 10_000, what: "the server to see the cancellation" });
    const before = await startUnaryCall(client, sayHello(), { name: "hang-never" }, { signal: ac.signal }).response.then(() => undefined, (e: unknown) => e);
    expect((before as RpcError).code).to.equal(Status.CANCELLED);
    expect(started).not.to.include("hang-never");
  });
});
