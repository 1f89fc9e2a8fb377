/**
 * A TCP proxy in front of etcd that a spec can cut and restore, to make a
 * client lose etcd while etcd itself keeps running (and accepts writes).
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface TcpProxy {
  /** `127.0.0.1:<port>` to give clients instead of the real endpoint. */
  readonly endpoint: string;
  /** Drops every open connection and refuses new ones. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A loopback listener relaying each connection to an upstream address; see {@link startRelay}. */
export interface Relay {
  readonly port: number;
  /** Every open socket, both sides. */
  readonly sockets: ReadonlySet<Socket>;
  /** Destroys every open connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Listens on a free loopback port and connects each client to `host:port`; `wire` moves the
 * bytes between the two (piping them, or looking at them on the way). The two sides of a pair
 * close together, and their errors are heard. A client is refused while `accept()` is false.
 */
export async function startRelay(host: string, port: number, wire: (client: Socket, upstream: Socket) => void, accept: () => boolean = () => true): Promise<Relay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!accept()) return void client.destroy();
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    wire(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    sockets,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const url = new URL(target.includes("://") ? target : `http://${target}`);
  let cut = false;
  const relay = await startRelay(
    url.hostname,
    Number(url.port),
    (client, upstream) => {
      client.pipe(upstream);
      upstream.pipe(client);
    },
    () => !cut,
  );
  return {
    endpoint: `127.0.0.1:${relay.port}`,
    cut() {
      cut = true;
      for (const s of relay.sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close: () => relay.close(),
  };
}
