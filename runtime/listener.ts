/**
 * The server's listening sockets. grpc-js's `bindAsync` keeps its TCP and TLS servers to
 * itself, so Node's defaults apply there: a TLS handshake may take 120 s, a connection that
 * never sends the HTTP/2 preface is held for ever, there is no connection limit, and refused
 * handshakes leave no trace. Instead we listen ourselves and hand each connection to grpc-js
 * through its public `createConnectionInjector` once it is established:
 *
 * - every connection gets `handshakeTimeoutMs` for its TLS handshake and again for the HTTP/2
 *   preface, then is closed;
 * - at most `maxConnections` are open at once (Node's `net.Server#maxConnections`);
 * - TLS is terminated here with the options of the server's grpc-js credentials, so refused
 *   handshakes are logged with reason and peer (rate-limited, see {@link RefusalLog});
 * - under mutual TLS the client certificate is checked here, after the handshake, so that a
 *   refused client is told why: its calls get UNAUTHENTICATED with the reason (Node checks
 *   client certificates only after the handshake and then drops the socket without a TLS
 *   alert, which leaves the client with a bare ECONNRESET).
 */
import * as grpc from "@grpc/grpc-js";
import { lookup } from "node:dns/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "./logger";
import { RefusalLog } from "./refusal-log";
import { CLIENT_PREFACE, prefaceState } from "./http2-preface";
import { certificateRefusal, describeTlsError, formatPeer, peerOf, type CertificateRefusal } from "./tls-refusal";

export interface ListenerOptions {
  grpc: grpc.Server;
  /** The hosts to bind, already resolved to addresses (see {@link resolveBindHosts}). */
  hosts: readonly string[];
  port: number;
  credentials: grpc.ServerCredentials;
  handshakeTimeoutMs: number;
  maxConnections: number;
  logger: Logger;
}

/** The bound sockets of one server. */
export interface Listener {
  readonly port: number;
  /** Stops accepting, and closes connections still in their handshake (established ones belong to grpc-js). */
  close(): Promise<void>;
}

/** The addresses a listen host stands for: an IP as is, a name through the resolver (every address, like grpc-js). */
export async function resolveBindHosts(host: string): Promise<string[]> {
  if (net.isIP(host) !== 0) return [host];
  const found = await lookup(host, { all: true });
  const addresses = [...new Set(found.map((a) => a.address))];
  if (addresses.length === 0) throw new Error(`${host} resolves to no address`);
  return addresses;
}

/** Binds every host on one port (the first bind picks it when `port` is 0) and starts accepting. */
export async function openListener(options: ListenerOptions): Promise<Listener> {
  const connections = new ConnectionGate(options);
  const servers: net.Server[] = [];
  let port = options.port;
  try {
    for (const host of options.hosts) {
      const server = connections.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host, port }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      servers.push(server);
      port = (server.address() as net.AddressInfo).port;
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    connections.close();
    throw err;
  }
  return {
    port,
    close: async () => {
      connections.close();
      // Stop accepting only: close()'s callback would wait for every connection, and the
      // established ones are grpc-js's to drain.
      for (const server of servers) server.close();
    },
  };
}

/** Accepts connections, bounds their set-up, and passes established ones to grpc-js. */
class ConnectionGate {
  private readonly injector: grpc.ConnectionInjector;
  private readonly refusals: RefusalLog;
  /** Sockets accepted but not yet handed to grpc-js. */
  private readonly pending = new Set<net.Socket>();
  private readonly secure: boolean;
  private readonly requireClientCertificate: boolean;
  private readonly refusedClients = new RefusedClientResponder();
  private watcher: ((context: tls.SecureContextOptions | null) => void) | undefined;
  private closed = false;

  constructor(private readonly options: ListenerOptions) {
    const { credentials } = options;
    this.secure = credentials._isSecure();
    const constructorOptions = credentials._getConstructorOptions() ?? {};
    this.requireClientCertificate = constructorOptions.requestCert === true && constructorOptions.rejectUnauthorized !== false;
    // TLS ends here: grpc-js sees plaintext HTTP/2 on an already secure socket (and keeps the credentials' interceptors).
    const interceptors = credentials._getInterceptors();
    const plain = grpc.ServerCredentials.createInsecure();
    this.injector = options.grpc.createConnectionInjector(interceptors.length > 0 ? grpc.experimental.createServerCredentialsWithInterceptors(plain, interceptors) : plain);
    this.refusals = new RefusalLog(options.logger);
  }

  createServer(): net.Server {
    const server = this.secure ? this.createTlsServer() : net.createServer((socket) => this.awaitPreface(socket));
    server.maxConnections = this.options.maxConnections;
    server.on("drop", (data?: { remoteAddress?: string; remotePort?: number }) =>
      this.refusals.note({
        what: "refused a connection",
        reason: `${this.options.maxConnections} connections open (maxConnections)`,
        peer: data ? formatPeer(data.remoteAddress, data.remotePort) : "unknown",
      }),
    );
    return server;
  }

  private createTlsServer(): tls.Server {
    const { credentials, handshakeTimeoutMs } = this.options;
    const server = tls.createServer({
      minVersion: "TLSv1.2", // HTTP/2 forbids older versions
      ...credentials._getConstructorOptions(),
      ...(credentials._getSecureContextOptions() ?? {}),
      ALPNProtocols: ["h2"],
      handshakeTimeout: handshakeTimeoutMs,
      // Client certificates are checked in `established`, where a refusal can say why.
      rejectUnauthorized: false,
    });
    let usable = credentials._getSecureContextOptions() !== null;
    server.prependListener("connection", (socket: net.Socket) => {
      if (this.closed || !usable) socket.destroy();
    });
    // Certificate providers deliver (and rotate) certificates later; follow them like grpc-js does.
    this.watcher ??= (context) => {
      usable = context !== null;
      if (context) server.setSecureContext(context);
    };
    credentials._addWatcher(this.watcher);
    server.on("close", () => this.watcher && credentials._removeWatcher(this.watcher));
    server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
      const peer = peerOf(socket);
      // With a listener here Node leaves closing to us (a handshake timeout would otherwise hold the socket).
      socket.destroy();
      const reason = describeTlsError(err);
      if (reason.quiet) this.options.logger.debug("TLS connection closed before the handshake", { peer, reason: reason.text });
      else this.refusals.note({ what: "refused a TLS handshake", reason: reason.text, peer, fields: { code: (err as NodeJS.ErrnoException).code } });
    });
    server.on("secureConnection", (socket: tls.TLSSocket) => this.established(socket));
    return server;
  }

  /** A TLS handshake finished: check the client's certificate, then wait for HTTP/2. */
  private established(socket: tls.TLSSocket): void {
    const peer = peerOf(socket);
    socket.on("error", () => undefined); // reported through the paths below; never crash the process
    if (this.requireClientCertificate && !socket.authorized) {
      const refusal = certificateRefusal(socket);
      this.refusals.note({ what: "refused a client certificate", reason: refusal.reason, peer, fields: refusal.fields });
      this.refusedClients.answer(socket, refusal, this.options.handshakeTimeoutMs);
      return;
    }
    if (socket.alpnProtocol !== "h2") {
      this.refusals.note({ what: "refused a TLS connection", reason: "the client did not negotiate HTTP/2 (ALPN h2)", peer });
      socket.destroy();
      return;
    }
    this.awaitPreface(socket);
  }

  /**
   * Hands the socket to grpc-js once the client's HTTP/2 preface is in (or once its first bytes
   * show it is something else, which grpc-js then answers as before). Bytes read here are put
   * back; Node's HTTP/2 session reads them first.
   */
  private awaitPreface(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const peer = peerOf(socket);
    this.pending.add(socket);
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (outcome: "inject" | "drop", reason?: string) => {
      clearTimeout(timer);
      socket.off("readable", onReadable);
      socket.off("close", onClose);
      socket.off("error", onError);
      this.pending.delete(socket);
      if (outcome === "drop") {
        if (reason) this.refusals.note({ what: "closed a connection", reason, peer });
        socket.destroy();
        return;
      }
      if (chunks.length > 0) socket.unshift(Buffer.concat(chunks));
      this.injector.injectConnection(socket);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        received += chunk.length;
      }
      const state = prefaceState(Buffer.concat(chunks, received));
      if (state !== "partial") finish("inject");
    };
    const onClose = () => finish("drop");
    const onError = () => finish("drop");
    const timer = setTimeout(
      () => finish("drop", received === 0 ? `no HTTP/2 preface within ${this.options.handshakeTimeoutMs} ms` : `HTTP/2 preface incomplete after ${this.options.handshakeTimeoutMs} ms (${received} of ${CLIENT_PREFACE.length} bytes)`),
      this.options.handshakeTimeoutMs,
    );
    socket.on("readable", onReadable);
    socket.on("close", onClose);
    socket.on("error", onError);
  }

  close(): void {
    this.closed = true;
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
    this.refusedClients.close();
    this.refusals.flush();
  }
}

/**
 * Answers every call on a connection whose client certificate was refused with
 * UNAUTHENTICATED and the reason, then closes it. The connection never reaches grpc-js
 * and the server's handlers.
 */
class RefusedClientResponder {
  private readonly server = http2.createServer();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private nextRefusal: CertificateRefusal | undefined;

  constructor() {
    this.server.on("session", (session: http2.ServerHttp2Session) => {
      const refusal = this.nextRefusal;
      this.sessions.add(session);
      session.on("error", () => undefined);
      session.on("close", () => this.sessions.delete(session));
      session.on("stream", (stream) => {
        stream.on("error", () => undefined);
        stream.respond(
          {
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": String(grpc.status.UNAUTHENTICATED),
            "grpc-message": grpcMessage(`client certificate refused: ${refusal?.reason ?? "not trusted"}`),
          },
          { endStream: true },
        );
        session.close();
      });
    });
  }

  answer(socket: tls.TLSSocket, refusal: CertificateRefusal, timeoutMs: number): void {
    this.nextRefusal = refusal;
    // Creates the session synchronously, which picks up `nextRefusal`.
    this.server.emit("connection", socket);
    this.nextRefusal = undefined;
    setTimeout(() => socket.destroy(), timeoutMs).unref();
  }

  close(): void {
    for (const session of this.sessions) session.destroy();
    this.sessions.clear();
  }
}

/** Percent-encodes a status message as the gRPC spec asks: `%` and anything outside printable ASCII. */
function grpcMessage(text: string): string {
  return Array.from(Buffer.from(text, "utf8"), (b) => (b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b))).join("");
}
