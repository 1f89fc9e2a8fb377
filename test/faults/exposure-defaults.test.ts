import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { createServer, Status, type Server, type ServerOptions } from "protomesh";
import { greeterHandlers } from "../../examples/greeter/service";
import { captureLogger, type CapturedLogger } from "../helpers/capture-logger";
import { GreeterDefinition, greeterClient } from "../helpers/greeter";
import { reflect } from "../helpers/reflection-client";

/** Lists services through reflection; resolves with the names or the gRPC status code of the refusal. */
async function reflectionAnswer(address: string): Promise<string[] | number> {
  try {
    const res = await reflect(address, { list_services: "*" });
    return (res.list_services_response?.service ?? []).map((s) => s.name);
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

describe("security: what a server exposes by default", function () {
  this.timeout(30_000);
  const servers: Server[] = [];
  // The development switch is tested on purpose below; nothing else may inherit it.
  const savedEnv = process.env.PROTOMESH_ENV;
  beforeEach(() => {
    delete process.env.PROTOMESH_ENV;
  });
  afterEach(async () => {
    if (savedEnv === undefined) delete process.env.PROTOMESH_ENV;
    else process.env.PROTOMESH_ENV = savedEnv;
    await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 100 })));
  });

  async function start(options: ServerOptions, address?: string): Promise<{ server: Server; port: number; logger: CapturedLogger }> {
    const logger = captureLogger();
    const server = createServer({ logger, ...options });
    server.add(GreeterDefinition, greeterHandlers("test"));
    servers.push(server);
    const port = await server.listen(address);
    return { server, port, logger };
  }

  it("listen() with no address serves this machine only (127.0.0.1)", async () => {
    const { server, port } = await start({});
    expect(server.address).to.equal(`127.0.0.1:${port}`);
    const client = greeterClient(`127.0.0.1:${port}`);
    try {
      expect((await client.sayHello({ name: "x" }, { deadlineMs: 5000 })).message).to.equal("Hello, x!");
    } finally {
      client.$close();
    }
  });

  it("serves reflection on loopback, without a plaintext warning", async () => {
    const { port, logger } = await start({}, "127.0.0.1:0");
    expect(await reflectionAnswer(`127.0.0.1:${port}`)).to.include("examples.greeter.v1.Greeter");
    expect(logger.matching("plaintext")).to.deep.equal([]);
  });

  it("beyond loopback: no reflection, and a warning that says plaintext is open to anyone", async () => {
    const { port, logger } = await start({}, "0.0.0.0:0");
    expect(await reflectionAnswer(`127.0.0.1:${port}`)).to.equal(Status.UNIMPLEMENTED);
    const [warning, ...more] = logger.matching("serving plaintext beyond loopback");
    expect(warning?.level).to.equal("warn");
    expect(warning?.fields.address).to.equal("0.0.0.0:0");
    expect(more).to.have.length(0);
    expect(logger.matching("reflection off")[0]?.fields.why).to.match(/reflection: true/);
    // The services themselves still answer.
    const client = greeterClient(`127.0.0.1:${port}`);
    try {
      expect((await client.sayHello({ name: "y" }, { deadlineMs: 5000 })).message).to.equal("Hello, y!");
    } finally {
      client.$close();
    }
  });

  it("beyond loopback, `reflection: true` and explicit plaintext credentials are honoured without a warning", async () => {
    const { port, logger } = await start({ reflection: true, credentials: grpc.ServerCredentials.createInsecure() }, "0.0.0.0:0");
    expect(await reflectionAnswer(`127.0.0.1:${port}`)).to.include("examples.greeter.v1.Greeter");
    expect(logger.matching("plaintext")).to.deep.equal([]);
  });

  it("beyond loopback, PROTOMESH_ENV=dev turns reflection on", async () => {
    process.env.PROTOMESH_ENV = "dev";
    const { port } = await start({}, "0.0.0.0:0");
    expect(await reflectionAnswer(`127.0.0.1:${port}`)).to.include("examples.greeter.v1.Greeter");
  });

  it("on loopback, `reflection: false` still turns it off", async () => {
    const { port } = await start({ reflection: false }, "127.0.0.1:0");
    expect(await reflectionAnswer(`127.0.0.1:${port}`)).to.equal(Status.UNIMPLEMENTED);
  });

  it("a host name is bound on every address it resolves to, loopback ones counting as loopback", async () => {
    const { server, port, logger } = await start({}, "localhost:0");
    expect(server.port).to.equal(port);
    expect(await reflectionAnswer(`localhost:${port}`)).to.include("examples.greeter.v1.Greeter");
    expect(logger.matching("plaintext")).to.deep.equal([]);
  });
});
