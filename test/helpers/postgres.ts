/**
 * A private PostgreSQL cluster for integration specs: `usePostgres()` inside a `describe` runs
 * initdb + pg_ctl (Debian's postgresql, as the `postgres` user when we are root) on a free
 * loopback port before the suite, and stops it and removes its directory after. `stop()` and
 * `start()` take the server down and back up on the same port and data (outage tests).
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { deadPort } from "./etcd";

const run = promisify(execFile);

export interface PostgresServer {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** A connection string for another database on the same server (created by `createDatabase`). */
  urlOf(database: string): string;
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (clients are disconnected). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))) : [];
  if (versions.length === 0) throw new Error("PostgreSQL is not installed: run `node scripts/ensure-env.js --all` (Debian's postgresql)");
  versions.sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0]!, "bin");
}

/** Runs a PostgreSQL binary, as the postgres user when we are root (initdb refuses root). */
async function pgTool(tool: string, args: string[]): Promise<void> {
  const bin = join(binDir(), tool);
  if (process.getuid?.() === 0) {
    const quoted = [bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    await run("su", ["postgres", "-s", "/bin/sh", "-c", quoted], { timeout: 60_000 });
  } else {
    await run(bin, args, { timeout: 60_000 });
  }
}

/**
 * Starts a fresh cluster on a free loopback port. By default without fsync (tests need no
 * durability); `durable: true` keeps Postgres's own default, every commit flushed to disk.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), "protomesh-pg-"));
  if (process.getuid?.() === 0) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await deadPort();
  const data = join(dir, "data");
  await pgTool("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const pgCtl = (action: "start" | "stop") =>
    action === "start"
      ? pgTool("pg_ctl", ["-D", data, "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1${options.durable ? "" : " -c fsync=off"} -c max_connections=200`, "-l", join(dir, "log"), "-w", "-t", "60", "start"])
      : pgTool("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  await pgCtl("start");
  let running = true;
  const server: PostgresServer = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      await run(join(binDir(), "psql"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", `CREATE DATABASE ${name}`], { timeout: 30_000 });
      return server.urlOf(name);
    },
    async stop() {
      if (!running) return;
      await pgCtl("stop");
      running = false;
    },
    async start() {
      if (running) return;
      await pgCtl("start");
      running = true;
    },
    async destroy() {
      await server.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Registers before/after hooks that start one cluster for the suite and remove it after. */
export function usePostgres(): { readonly server: PostgresServer; beforeStop(fn: () => unknown): void } {
  let server: PostgresServer | undefined;
  const cleanups: Array<() => unknown> = [];
  before(async function () {
    this.timeout(90_000);
    server = await startPostgres();
  });
  after(async function () {
    this.timeout(60_000);
    for (const fn of cleanups.splice(0).reverse()) await Promise.resolve().then(fn).catch(() => undefined);
    await server?.destroy();
    server = undefined;
  });
  return {
    get server() {
      if (!server) throw new Error("postgres is not running (use it inside tests or hooks)");
      return server;
    },
    /** Runs `fn` (close pools, stop processes) before the server stops. */
    beforeStop(fn) {
      cleanups.push(fn);
    },
  };
}
