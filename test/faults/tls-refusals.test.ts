import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import * as net from "node:net";
import { Status, type RpcError, type Server } from "protomesh";
import { captureLogger, type CapturedLogger } from "../helpers/capture-logger";
import { greeterClient, startGreeter } from "../helpers/greeter";
import { waitFor } from "../helpers/wait";
import { createTestPki, type KeyPair, type TestPki } from "./helpers/pki";

async function call(client: ReturnType<typeof greeterClient>): Promise<{ code?: number; message?: string; reply?: string }> {
  try {
    return { reply: (await client.sayHello({ name: "tls" }, { deadlineMs: 5000 })).message };
  } catch (err) {
    return { code: (err as RpcError).code, message: (err as RpcError).message };
  } finally {
    client.$close();
  }
}

/** Connects, writes `bytes`, and resolves once the server has closed the connection. */
function rawExchange(port: number, bytes: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve());
    socket.resume();
  });
}

describe("security: refused TLS connections are logged on the server and explained to the client", function () {
  this.timeout(60_000);
  let pki: TestPki;
  let serverPair: KeyPair;
  let clientPair: KeyPair;
  const servers: Server[] = [];
  before(() => {
    pki = createTestPki();
    serverPair = pki.server("greeter-server", ["127.0.0.1", "localhost", "greeter"]);
    clientPair = pki.client("greeter-client");
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 100 })));
    pki.remove();
  });

  /** A mutual-TLS greeter whose sayHello counts the calls that reach it. */
  async function mtlsServer(): Promise<{ port: number; logger: CapturedLogger; server: Server; handled: () => number }> {
    let handled = 0;
    const logger = captureLogger();
    const credentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: serverPair.key, cert_chain: serverPair.cert }], true);
    const { server, address } = await startGreeter(
      {
        async sayHello(req) {
          handled++;
          return { message: `Hello, ${req.name}!`, servedBy: "mtls", at: new Date() };
        },
      },
      { credentials, logger },
    );
    servers.push(server);
    return { port: Number(address.split(":").pop()), logger, server, handled: () => handled };
  }

  const withCert = (pair?: KeyPair) => grpc.credentials.createSsl(pki.ca, pair?.key, pair?.cert);

  it("a client certificate from an unknown CA: UNAUTHENTICATED with the reason for the client, a log line with reason, peer and names for the server", async () => {
    const { port, logger, handled } = await mtlsServer();
    const rogue = await call(greeterClient(`localhost:${port}`, { credentials: withCert(pki.rogueClient("intruder")) }));
    expect(rogue.code, rogue.message).to.equal(Status.UNAUTHENTICATED);
    expect(rogue.message).to.match(/client certificate refused: not signed by a CA this server trusts \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    const [line] = logger.matching("refused a client certificate");
    expect(line?.level).to.equal("warn");
    expect(line?.fields).to.include({ subject: "intruder", issuer: "rogue-ca", code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect(line?.fields.peer).to.match(/^127\.0\.0\.1:\d+$/);
    expect(line?.fields.reason).to.match(/not signed by a CA this server trusts/);
    expect(handled(), "the refused call never reached a handler").to.equal(0);

    const none = await call(greeterClient(`localhost:${port}`, { credentials: withCert() }));
    expect(none.code, none.message).to.equal(Status.UNAUTHENTICATED);
    expect(none.message).to.match(/certificate required, and the client sent none/);
    expect(logger.matching("refused a client certificate")).to.have.length(2);
    expect(handled()).to.equal(0);

    const rightful = await call(greeterClient(`localhost:${port}`, { credentials: withCert(clientPair) }));
    expect(rightful.reply, rightful.message).to.equal("Hello, tls!");
    expect(handled()).to.equal(1);
  });

  it("a plaintext client at the TLS port is logged with the reason and its address", async () => {
    const { port, logger } = await mtlsServer();
    const plain = await call(greeterClient(`127.0.0.1:${port}`));
    expect(plain.code, plain.message).to.equal(Status.UNAVAILABLE);
    const line = await waitFor(() => logger.matching("refused a TLS handshake")[0], { what: "the refusal log line" });
    expect(line.fields.reason).to.match(/not a TLS client/);
    expect(line.fields.peer).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it("a burst of bad handshakes logs five lines, then one summary for the rest of the window", async () => {
    const { port, logger, server } = await mtlsServer();
    await Promise.all(Array.from({ length: 30 }, () => rawExchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    await waitFor(() => logger.matching("refused a TLS handshake").length >= 5, { what: "five refusal lines" });
    expect(logger.matching("refused a TLS handshake")).to.have.length(5);
    // The window's summary is written when it ends, or when the server closes.
    await server.shutdown({ graceMs: 100 });
    const [summary] = logger.matching("more connections in the last");
    expect(summary?.msg).to.equal("refused 25 more connections in the last 10 s");
    expect(Object.values(summary?.fields.byReason as Record<string, number>)).to.deep.equal([25]);
  });

  it("a client that does not trust the server leaves no warning, and the server keeps serving", async () => {
    const { port, logger } = await mtlsServer();
    const distrust = await call(greeterClient(`localhost:${port}`, { credentials: grpc.credentials.createSsl(pki.rogueClient("x").cert) }));
    expect(distrust.code, distrust.message).to.equal(Status.UNAVAILABLE);
    const rightful = await call(greeterClient(`localhost:${port}`, { credentials: withCert(clientPair) }));
    expect(rightful.reply, rightful.message).to.equal("Hello, tls!");
    expect(logger.entries.values.filter((e) => e.level === "warn" || e.level === "error")).to.deep.equal([]);
  });
});
