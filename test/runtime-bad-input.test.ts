import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { RpcError, Status, createServer, type Server } from "protomesh";
import { startGreeter, greeterClient, GreeterDefinition } from "./helpers/greeter";
import { captureLogger } from "./helpers/capture-logger";

const identity = (b: Buffer) => b;

/** A raw grpc-js unary call with hand-made request bytes. */
function rawCall(address: string, path: string, body: Buffer): Promise<grpc.StatusObject | Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err, value) => {
      client.close();
      resolve(err ? (err as grpc.StatusObject) : value!);
    });
  });
}

describe("runtime: bad input never crashes a server", () => {
  let server: Server;
  let address: string;
  const logger = captureLogger();
  before(async () => {
    ({ server, address } = await startGreeter({}, { maxReceiveMessageBytes: 64 * 1024, logger }));
  });
  after(() => server.shutdown({ graceMs: 100 }));

  it("answers malformed request bytes with an error status and keeps serving", async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]); // field 1 with an absurd length
    const res = await rawCall(address, "/examples.greeter.v1.Greeter/SayHello", garbage);
    expect(Buffer.isBuffer(res)).to.equal(false);
    expect((res as grpc.StatusObject).code).to.equal(Status.INTERNAL);
    // The caller is told only "Error deserializing request"; the server's log says which method and why.
    const logged = logger.matching("could not decode a request");
    expect(logged).to.have.length(1);
    expect(logged[0].level).to.equal("warn");
    expect(String(logged[0].fields.reason)).to.match(/^\/examples\.greeter\.v1\.Greeter\/SayHello: \S/);
    expect(logged[0].fields.bytes).to.equal(garbage.length);
    const client = greeterClient(address);
    expect((await client.sayHello({ name: "still up" })).message).to.equal("Hello, still up!");
    client.$close();
  });

  it("answers an oversized request with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const client = greeterClient(address);
    const e = (await client.sayHello({ name: "x".repeat(200 * 1024) }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.RESOURCE_EXHAUSTED);
    expect((await client.sayHello({ name: "small" })).message).to.equal("Hello, small!");
    client.$close();
  });

  it("answers an oversized response with RESOURCE_EXHAUSTED on a client with a receive limit", async () => {
    const client = greeterClient(address, { maxReceiveMessageBytes: 1024 });
    const e = (await client.sayHello({ name: "y".repeat(4000) }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.RESOURCE_EXHAUSTED);
    client.$close();
  });

  it("answers an unknown method with UNIMPLEMENTED", async () => {
    const res = await rawCall(address, "/examples.greeter.v1.Greeter/NoSuchMethod", Buffer.alloc(0));
    expect((res as grpc.StatusObject).code).to.equal(Status.UNIMPLEMENTED);
    const res2 = await rawCall(address, "/no.such.Service/Method", Buffer.alloc(0));
    expect((res2 as grpc.StatusObject).code).to.equal(Status.UNIMPLEMENTED);
  });

  it("answers UNIMPLEMENTED for a method the handlers leave out", async () => {
    const { server: partial, address: addr } = await startGreeter();
    await partial.shutdown({ graceMs: 10 });
    const s = createServer();
    s.add(GreeterDefinition, { async sayHello() { return {}; } } as never);
    const port = await s.listen("127.0.0.1:0");
    const client = greeterClient(`127.0.0.1:${port}`);
    const e = (await client.collectHellos([{ name: "a" }]).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.UNIMPLEMENTED);
    client.$close();
    await s.shutdown({ graceMs: 10 });
    expect(addr).to.be.a("string");
  });

  it("rejects invalid server options and handlers with clear errors", async () => {
    expect(() => createServer({ maxReceiveMessageBytes: -1 })).to.throw(/maxReceiveMessageBytes/);
    expect(() => createServer().add(GreeterDefinition, { sayHello: 42 } as never)).to.throw(/sayHello must be a function/);
    let err: unknown;
    await createServer().listen("nonsense").catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/listen/);
  });
});
