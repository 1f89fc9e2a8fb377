import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { RpcError, Status, type Server } from "protomesh";
import { greeterHandlers } from "../../examples/greeter/service";
import { captureLogger } from "../helpers/capture-logger";
import { collect, delay, greeterClient, startGreeter } from "../helpers/greeter";
import { mb, settledHeap } from "./helpers/heap";
import { grpcFrame, rawGrpcRequest } from "./helpers/raw-http2";

const SAY_HELLO = "/examples.greeter.v1.Greeter/SayHello";
const MAX_REQUEST_BYTES = 64 * 1024;
const MB = 1 << 20;

/** Any request error as `{ code, message }`; a reply as `{ reply }`. */
async function outcome<T>(call: () => Promise<T>): Promise<{ code?: number; message?: string; reply?: T }> {
  try {
    return { reply: await call() };
  } catch (err) {
    return { code: (err as RpcError).code, message: (err as RpcError).message };
  }
}

describe("bad input: requests, messages, deadlines and metadata a server or client must survive", function () {
  this.timeout(180_000);
  let server: Server;
  let address: string;
  let client: ReturnType<typeof greeterClient>;
  const base = greeterHandlers("bad-input");
  const logger = captureLogger();

  before(async () => {
    ({ server, address } = await startGreeter(
      {
        async sayHello(req, ctx) {
          switch (req.name) {
            case "big-header":
              ctx.responseHeader.set("x-big", "h".repeat(MB));
              break;
            case "big-trailer":
              ctx.responseTrailer.set("x-big", "t".repeat(MB));
              break;
            case "big-message":
              throw new RpcError(Status.INVALID_ARGUMENT, "m".repeat(MB));
            case "big-details":
              throw new RpcError(Status.FAILED_PRECONDITION, "too much detail", { blob: "d".repeat(MB) });
            case "big-reply":
              return { message: "r".repeat(200 * 1024) };
            case "slow":
              await delay(200);
              return { message: `aborted=${ctx.signal.aborted}`, servedBy: String(ctx.deadline ?? "none") };
          }
          return base.sayHello(req, ctx);
        },
        async *streamHellos(req, ctx) {
          ctx.responseHeader.set("x-big", "s".repeat(MB));
          yield* base.streamHellos(req, ctx);
        },
      },
      { maxReceiveMessageBytes: MAX_REQUEST_BYTES, logger },
    ));
    client = greeterClient(address);
  });
  after(async () => {
    client.$close();
    await server.shutdown({ graceMs: 100 });
  });

  async function stillServing(): Promise<void> {
    expect((await client.sayHello({ name: "still up" }, { deadlineMs: 2000 })).message).to.equal("Hello, still up!");
  }

  it("answers malformed and lying request bytes with a gRPC status", async () => {
    const cases: Array<[string, Buffer, Record<string, string>, number]> = [
      ["a protobuf field with an absurd length", grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])), {}, Status.INTERNAL],
      ["a frame declaring 100 MB and carrying 3 bytes", grpcFrame(Buffer.from("abc"), { declaredLength: 100 * MB }), {}, Status.RESOURCE_EXHAUSTED],
      ["a frame cut short", grpcFrame(Buffer.from("abc"), { declaredLength: 10 }), {}, Status.UNIMPLEMENTED],
      ["half a frame header", Buffer.from([0, 0, 0]), {}, Status.UNIMPLEMENTED],
      ["the compressed flag without an encoding", grpcFrame(Buffer.from("abc"), { flag: 1 }), {}, Status.INTERNAL],
      ["gzip that is not gzip", grpcFrame(Buffer.from("abc"), { flag: 1 }), { "grpc-encoding": "gzip" }, Status.INTERNAL],
      ["an unknown encoding", grpcFrame(Buffer.from("abc"), { flag: 1 }), { "grpc-encoding": "no-such-codec" }, Status.UNIMPLEMENTED],
      ["two messages for a unary method", Buffer.concat([grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.alloc(0))]), {}, Status.UNIMPLEMENTED],
      ["a grpc-timeout that is not a duration", grpcFrame(Buffer.alloc(0)), { "grpc-timeout": "soon" }, Status.INTERNAL],
    ];
    const seen: string[] = [];
    for (const [what, body, headers, expected] of cases) {
      const res = await rawGrpcRequest(address, SAY_HELLO, body, headers);
      seen.push(`${what}: ${res.grpcStatus === undefined ? `no status ${JSON.stringify(res)}` : Status[res.grpcStatus]}`);
      expect(res.grpcStatus, `${what} (${res.grpcMessage})`).to.equal(expected);
    }
    const wrongType = await rawGrpcRequest(address, SAY_HELLO, grpcFrame(Buffer.alloc(0)), { "content-type": "text/html" });
    expect(wrongType.http, "a request that is not gRPC").to.equal(415);
    await stillServing();
  });

  it("answers oversized messages with RESOURCE_EXHAUSTED, in both directions", async () => {
    const big = "x".repeat(MAX_REQUEST_BYTES + 1);
    expect((await outcome(() => client.sayHello({ name: big }))).code).to.equal(Status.RESOURCE_EXHAUSTED);
    expect((await outcome(() => client.collectHellos([{ name: "ok" }, { name: big }]))).code).to.equal(Status.RESOURCE_EXHAUSTED);
    const small = greeterClient(address, { maxReceiveMessageBytes: 64 * 1024 });
    try {
      expect((await outcome(() => small.sayHello({ name: "big-reply" }))).code).to.equal(Status.RESOURCE_EXHAUSTED);
      expect((await small.sayHello({ name: "after" })).message).to.equal("Hello, after!");
    } finally {
      small.$close();
    }
    const limited = greeterClient(address, { maxSendMessageBytes: 1024 });
    try {
      expect((await outcome(() => limited.sayHello({ name: "y".repeat(2048) }))).code).to.equal(Status.RESOURCE_EXHAUSTED);
    } finally {
      limited.$close();
    }
    await stillServing();
  });

  it("answers unknown services and methods with UNIMPLEMENTED", async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const call = (path: string) =>
      new Promise<number>((resolve) =>
        raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 3000 }, (err) => resolve(err?.code ?? Status.OK)),
      );
    try {
      expect(await call("/examples.greeter.v1.Greeter/NoSuchMethod")).to.equal(Status.UNIMPLEMENTED);
      expect(await call("/no.such.v1.Service/SayHello")).to.equal(Status.UNIMPLEMENTED);
      expect(await call("/" + "z".repeat(4000) + "/M")).to.equal(Status.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
    const res = await rawGrpcRequest(address, "not-a-path", grpcFrame(Buffer.alloc(0)));
    expect(res.grpcStatus ?? res.reset, "a path without slashes").to.not.equal(undefined);
    await stillServing();
  });

  it("treats absurd deadlines sanely: past ones expire, unrepresentable ones are refused, far ones mean none", async () => {
    const cases: Array<[string, () => Promise<unknown>, number | "ok"]> = [
      ["deadlineMs -1000", () => client.sayHello({ name: "slow" }, { deadlineMs: -1000 }), Status.DEADLINE_EXCEEDED],
      ["deadlineMs 0", () => client.sayHello({ name: "slow" }, { deadlineMs: 0 }), Status.DEADLINE_EXCEEDED],
      ["deadline in 1970", () => client.sayHello({ name: "slow" }, { deadline: new Date(1) }), Status.DEADLINE_EXCEEDED],
      ["deadlineMs NaN", () => client.sayHello({ name: "slow" }, { deadlineMs: NaN }), Status.INVALID_ARGUMENT],
      ["deadline Invalid Date", () => client.sayHello({ name: "slow" }, { deadline: new Date(NaN) }), Status.INVALID_ARGUMENT],
      ["deadlineMs as a string", () => client.sayHello({ name: "slow" }, { deadlineMs: "100" as unknown as number }), Status.INVALID_ARGUMENT],
      ["streaming, deadlineMs NaN", () => collect(client.streamHellos({ name: "s", count: 1 }, { deadlineMs: NaN })), Status.INVALID_ARGUMENT],
      ["deadlineMs Infinity", () => client.sayHello({ name: "slow" }, { deadlineMs: Infinity }), "ok"],
      ["deadlineMs 1e15 (31,700 years)", () => client.sayHello({ name: "slow" }, { deadlineMs: 1e15 }), "ok"],
      ["deadlineMs 1e10 (116 days)", () => client.sayHello({ name: "slow" }, { deadlineMs: 1e10 }), "ok"],
      ["deadline in the year 9999", () => client.sayHello({ name: "slow" }, { deadline: new Date("9999-12-31T00:00:00Z") }), "ok"],
      ["the latest Date there is", () => client.sayHello({ name: "slow" }, { deadline: new Date(8.64e15) }), "ok"],
    ];
    for (const [what, call, expected] of cases) {
      let promise: Promise<unknown>;
      try {
        promise = call();
      } catch (err) {
        throw new Error(`${what}: threw synchronously instead of failing the call (${String(err)})`);
      }
      const res = await outcome(() => Promise.race([promise, delay(5000).then(() => "hung")]));
      if (expected === "ok") {
        expect(res.code, `${what}: ${res.message}`).to.equal(undefined);
        expect(res.reply, `${what}: the call ended`).to.not.equal("hung");
        expect((res.reply as { message: string }).message, `${what}: the handler was not aborted`).to.equal("aborted=false");
      } else {
        expect(res.code, `${what}: ${res.message}`).to.equal(expected);
      }
    }
    await stillServing();
  });

  it("refuses huge request metadata with RESOURCE_EXHAUSTED before sending it", async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ["a 1 MB header", { "x-big": "a".repeat(MB) }],
      ["a 1 MB binary header", { "x-big-bin": "a".repeat(MB) }],
      ["10,000 headers", Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`x-h${i}`, "v"]))],
    ];
    for (const [what, metadata] of cases) {
      const res = await outcome(() => client.sayHello({ name: "x" }, { metadata, deadlineMs: 3000 }));
      expect(res.code, `${what}: ${res.message}`).to.equal(Status.RESOURCE_EXHAUSTED);
    }
    expect((await client.sayHello({ name: "x" }, { metadata: { "x-fine": "a".repeat(8 * 1024) } })).message).to.equal("Hello, x!");
    // A client that does not check: the server resets the stream and keeps serving.
    const res = await rawGrpcRequest(address, SAY_HELLO, grpcFrame(Buffer.alloc(0)), { "x-big": "a".repeat(MB) });
    expect(res.grpcStatus, "no OK for a request the server could not read").to.not.equal(Status.OK);
    await stillServing();
  });

  it("turns huge response metadata into an error at once, and the connection keeps working", async () => {
    const cases: Array<[string, () => Promise<unknown>, number]> = [
      ["a 1 MB response header", () => client.sayHello({ name: "big-header" }), Status.RESOURCE_EXHAUSTED],
      ["a 1 MB response trailer", () => client.sayHello({ name: "big-trailer" }), Status.RESOURCE_EXHAUSTED],
      ["a 1 MB header on a stream", () => collect(client.streamHellos({ name: "s", count: 2 })), Status.RESOURCE_EXHAUSTED],
      ["a 1 MB error message", () => client.sayHello({ name: "big-message" }), Status.INVALID_ARGUMENT],
      ["1 MB of error details", () => client.sayHello({ name: "big-details" }), Status.FAILED_PRECONDITION],
    ];
    for (const [what, call, expected] of cases) {
      const t0 = Date.now();
      const res = await outcome(() => call());
      expect(res.code, `${what}: ${res.message}`).to.equal(expected);
      expect(Date.now() - t0, `${what}: answered, not left to a deadline`).to.be.below(2000);
      // The same connection must still carry calls (an oversized header block used to wedge it).
      await stillServing();
    }
    const truncated = await outcome(() => client.sayHello({ name: "big-message" }));
    expect(truncated.message!.length).to.be.below(2048);
    expect(logger.matching("response metadata over the limit"), "the server says why").to.have.length.greaterThan(0);
  });

  it("keeps the heap bounded across thousands of bad requests", async function () {
    this.timeout(120_000);
    const round = async () => {
      await outcome(() => client.sayHello({ name: "x".repeat(MAX_REQUEST_BYTES + 1) }));
      await outcome(() => client.sayHello({ name: "big-header" }));
      await outcome(() => client.sayHello({ name: "big-message" }));
      await outcome(() => client.sayHello({ name: "x" }, { metadata: { "x-big": "a".repeat(MB) } }));
      await rawGrpcRequest(address, SAY_HELLO, grpcFrame(Buffer.from("abc"), { declaredLength: 100 * MB }));
    };
    for (let i = 0; i < 20; i++) await round(); // warm-up: lazily built state is not a leak
    const before = await settledHeap();
    const rounds = 300;
    for (let i = 0; i < rounds; i++) await round();
    const after = await settledHeap();
    process.stdout.write(`      [bad input, memory] ${rounds * 5} bad requests · heap ${mb(before)} → ${mb(after)}\n`);
    // Each round moves over 3 MB of garbage; anything retained per request would show as tens of MB.
    expect(after - before, "heap growth").to.be.below(16 * MB);
    await stillServing();
  });
});
