import * as net from "node:net";
import { expect } from "chai";
import { closeClient, createClient, createServer, etcdRegistry, RegistrationTimeoutError } from "../index";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { captureLogger } from "./helpers/capture-logger";
import { deadPort, uniqueNamespace } from "./helpers/etcd";

// A server whose etcd is unreachable: nobody could find it, so by default listen() fails
// (as go-zero and Kratos fail at start); opting out serves unregistered and says so, repeatedly.

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("a server whose etcd is unreachable", function () {
  this.timeout(60_000);

  it("by default, listen() rejects after registerWaitMs with an error naming etcd, and the port is closed", async () => {
    const port = await deadPort();
    const logger = captureLogger();
    const registry = etcdRegistry({ endpoints: [`127.0.0.1:${port}`], namespace: uniqueNamespace(), registerWaitMs: 1500, callTimeoutMs: 500, logger });
    const server = createServer({ name: "greeter", registry, logger });
    server.add(GreeterDefinition, greeterHandlers("lonely"));
    const started = Date.now();
    let error: unknown;
    try {
      await server.listen("127.0.0.1:0");
    } catch (err) {
      error = err;
    }
    const waited = Date.now() - started;
    expect(error).to.be.instanceOf(RegistrationTimeoutError);
    expect((error as Error).message).to.match(
      new RegExp(`^could not register greeter instance \\S+ in etcd \\(http://127\\.0\\.0\\.1:${port}\\) within 1500 ms: .+\\. Check that etcd is running and ETCD_ENDPOINTS points at it, or pass onRegisterTimeout: "serve"`),
    );
    // Bounded: it gave up after the wait (plus at most one etcd call's deadline), not never.
    expect(waited).to.be.at.least(1400).and.below(1500 + 15_000);
    expect(server.state).to.equal("closed");
    expect(await refused(server.port!)).to.equal(true);
    await registry.close();
  });

  it('with onRegisterTimeout: "serve", listen() resolves, calls are served, and the warning repeats until registered', async () => {
    const port = await deadPort();
    const logger = captureLogger();
    const registry = etcdRegistry({
      endpoints: [`127.0.0.1:${port}`],
      namespace: uniqueNamespace(),
      registerWaitMs: 500,
      callTimeoutMs: 300,
      onRegisterTimeout: "serve",
      unregisteredWarnMs: 300,
      logger,
    });
    const server = createServer({ name: "greeter", registry, logger });
    server.add(GreeterDefinition, greeterHandlers("lonely"));
    const bound = await server.listen("127.0.0.1:0");
    const client = createClient(GreeterDefinition, `127.0.0.1:${bound}`);
    try {
      expect((await client.sayHello({ name: "Ada" }, { deadlineMs: 10_000 })).message).to.match(/Ada/);
      expect(logger.matching("not registered: could not register greeter instance")).to.have.length(1);
      await logger.entries.next((e) => e.level === "warn" && e.msg.startsWith("still not registered in etcd"), { timeoutMs: 10_000, what: "a repeated warning" });
      await logger.entries.next((e) => e.level === "warn" && e.msg.startsWith("still not registered in etcd"), { timeoutMs: 10_000, what: "a second repeated warning" });
    } finally {
      closeClient(client);
      await server.shutdown({ graceMs: 500 });
      await registry.close();
    }
  });
});
