/**
 * A private Redis for integration specs: `useRedis()` inside a `describe`
 * starts `redis-server` on a free loopback port (no persistence) before the
 * suite and stops it after. `stop()`/`start()` let a spec take it away and
 * bring it back on the same port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer } from "node:net";

export interface RedisFixture {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: an outage, not a shutdown). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(500);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      socket.destroy();
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  // redis-server logs to stdout; keep the tail for the error message.
  const keep = (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${stderr.trim()}`))));
  exited.catch(() => undefined);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (await Promise.race([ping(port), exited])) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer on port ${port} within 15 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** Registers before/after hooks around a private redis-server. */
export function useRedis(): RedisFixture {
  let child: ChildProcess | undefined;
  let port = 0;
  before(async function () {
    this.timeout(30_000);
    port = await freePort();
    child = await launch(port);
  });
  after(async () => {
    await kill(child);
    child = undefined;
  });
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    async stop() {
      await kill(child);
      child = undefined;
    },
    async start() {
      child = await launch(port);
    },
  };
}
