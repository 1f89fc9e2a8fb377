import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import * as net from "node:net";
import * as tls from "node:tls";
import type { RpcError, Server, ServerOptions } from "protomesh";
import { captureLogger, type CapturedLogger } from "../helpers/capture-logger";
import { greeterClient, startGreeter } from "../helpers/greeter";
import { waitFor } from "../helpers/wait";
import { createTestPki, type TestPki } from "./helpers/pki";

/** Node's own TLS handshake timeout, which applied before: a stalled client held a connection this long. */
const NODE_DEFAULT_HANDSHAKE_MS = 120_000;
const BOUND_MS = 1000;

/** A connection that sends `bytes` (or nothing) and then stalls; `closed` resolves with the ms it stayed open. */
function stall(port: number, bytes?: Buffer | string): { closed: Promise<number>; socket: net.Socket } {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  socket.resume();
  const closed = new Promise<number>((resolve) => {
    socket.once("connect", () => {
      const openedAt = Date.now();
      if (bytes !== undefined) socket.write(bytes);
      socket.once("close", () => resolve(Date.now() - openedAt));
    });
  });
  return { closed, socket };
}

/** The start of a TLS ClientHello: a record header announcing 512 bytes, then only a few of them. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

async function sayHello(port: number, credentials?: grpc.ChannelCredentials): Promise<string> {
  const client = greeterClient(`localhost:${port}`, { credentials });
  try {
    return (await client.sayHello({ name: "ok" }, { deadlineMs: 10_000 })).message;
  } finally {
    client.$close();
  }
}

describe("security: connections that stall are closed within the handshake bound; connections and streams are limited", function () {
  this.timeout(60_000);
  let pki: TestPki;
  let tlsCredentials: grpc.ServerCredentials;
  let clientCredentials: grpc.ChannelCredentials;
  const servers: Server[] = [];
  before(() => {
    pki = createTestPki();
    const pair = pki.server("limits", ["127.0.0.1", "localhost"]);
    tlsCredentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: pair.key, cert_chain: pair.cert }], false);
    clientCredentials = grpc.credentials.createSsl(pki.ca);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 100 })));
    pki.remove();
  });

  async function start(options: ServerOptions): Promise<{ port: number; logger: CapturedLogger }> {
    const logger = captureLogger();
    const { server, address } = await startGreeter({}, { logger, ...options });
    servers.push(server);
    return { port: Number(address.split(":").pop()), logger };
  }

  describe("TLS", () => {
    let port: number;
    let logger: CapturedLogger;
    before(async () => {
      ({ port, logger } = await start({ credentials: tlsCredentials, handshakeTimeoutMs: BOUND_MS }));
    });

    it("closes a client that connects and sends nothing within the bound, and says so", async () => {
      const openMs = await stall(port).closed;
      expect(openMs).to.be.at.least(BOUND_MS - 50).and.below(NODE_DEFAULT_HANDSHAKE_MS / 10);
      const line = await waitFor(() => logger.matching("refused a TLS handshake").find((e) => /not finished in time/.test(String(e.fields.reason))), { what: "the timeout log line" });
      expect(line.fields.peer).to.match(/^127\.0\.0\.1:\d+$/);
    });

    it("closes a client that stops in the middle of its ClientHello", async () => {
      const openMs = await stall(port, PARTIAL_CLIENT_HELLO).closed;
      expect(openMs).to.be.at.least(BOUND_MS - 50).and.below(NODE_DEFAULT_HANDSHAKE_MS / 10);
    });

    it("closes a client that finishes the handshake but never sends the HTTP/2 preface", async () => {
      const socket = tls.connect({ port, host: "127.0.0.1", ca: pki.ca, ALPNProtocols: ["h2"], servername: "localhost" });
      socket.on("error", () => undefined);
      const secureAt = await new Promise<number>((resolve) => socket.once("secureConnect", () => resolve(Date.now())));
      await new Promise((resolve) => socket.once("close", resolve));
      expect(Date.now() - secureAt).to.be.at.least(BOUND_MS - 50).and.below(NODE_DEFAULT_HANDSHAKE_MS / 10);
      await waitFor(() => logger.matching("closed a connection").find((e) => /no HTTP\/2 preface/.test(String(e.fields.reason))), { what: "the preface log line" });
    });

    it("keeps serving rightful clients while others stall", async () => {
      const stalled = Array.from({ length: 20 }, () => stall(port));
      expect(await sayHello(port, clientCredentials)).to.equal("Hello, ok!");
      await Promise.all(stalled.map((s) => s.closed));
    });
  });

  describe("plaintext", () => {
    let port: number;
    let logger: CapturedLogger;
    before(async () => {
      ({ port, logger } = await start({ handshakeTimeoutMs: BOUND_MS }));
    });

    it("closes a client that sends nothing, or half the HTTP/2 preface, within the bound", async () => {
      const [silent, half] = await Promise.all([stall(port).closed, stall(port, "PRI * HTTP/2.0\r\n").closed]);
      for (const openMs of [silent, half]) expect(openMs).to.be.at.least(BOUND_MS - 50).and.below(NODE_DEFAULT_HANDSHAKE_MS / 10);
      const reasons = logger.matching("closed a connection").map((e) => String(e.fields.reason));
      expect(reasons.some((r) => /no HTTP\/2 preface/.test(r))).to.equal(true);
      expect(reasons.some((r) => /preface incomplete .*16 of 24 bytes/.test(r))).to.equal(true);
      expect(await sayHello(port)).to.equal("Hello, ok!");
    });

    it("answers HTTP/1.1 at once, as grpc-js always did, instead of waiting for a preface", async () => {
      const openMs = await stall(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").closed;
      expect(openMs).to.be.below(BOUND_MS);
    });
  });

  it("refuses connections beyond maxConnections at once, logs them, and takes new ones when slots free up", async () => {
    const { port, logger } = await start({ maxConnections: 3, handshakeTimeoutMs: 60_000 });
    const held = [stall(port), stall(port), stall(port)];
    await Promise.all(held.map((h) => new Promise((r) => (h.socket.readyState === "open" ? r(null) : h.socket.once("connect", r)))));
    const extra = stall(port);
    await extra.closed; // refused while the three are still open (their timeout is a minute away)
    for (const h of held) expect(h.socket.destroyed, "the held connections stay open").to.equal(false);
    const line = await waitFor(() => logger.matching("refused a connection")[0], { what: "the refusal log line" });
    expect(line.fields.reason).to.equal("3 connections open (maxConnections)");
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    expect(await sayHello(port)).to.equal("Hello, ok!");
  });

  it("lets at most maxConcurrentStreams calls of one connection run at once; the client queues the rest", async () => {
    let running = 0;
    let most = 0;
    const gate: Array<() => void> = [];
    const { server, address } = await startGreeter(
      {
        async sayHello(req) {
          running++;
          most = Math.max(most, running);
          await new Promise<void>((resolve) => gate.push(resolve));
          running--;
          return { message: req.name, servedBy: "limits", at: new Date() };
        },
      },
      { maxConcurrentStreams: 2, logger: captureLogger() },
    );
    servers.push(server);
    const client = greeterClient(address);
    const calls = Array.from({ length: 5 }, (_, i) => client.sayHello({ name: `c${i}` }, { deadlineMs: 30_000 }).then((r) => r.message, (e: RpcError) => `error ${e.code}`));
    await waitFor(() => running === 2, { what: "two calls running" });
    // Give a third call every chance to start: it must not.
    await new Promise((r) => setTimeout(r, 300));
    expect(running).to.equal(2);
    while ((await Promise.race([Promise.all(calls).then(() => "done"), new Promise((r) => setTimeout(() => r("tick"), 20))])) !== "done") {
      gate.splice(0).forEach((release) => release());
    }
    expect(await Promise.all(calls)).to.deep.equal(["c0", "c1", "c2", "c3", "c4"]);
    expect(most).to.equal(2);
    client.$close();
  });
});
