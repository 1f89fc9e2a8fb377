/**
 * A private etcd for tests and the demo: real `etcd` processes on free
 * loopback ports with temporary data dirs. Production uses a real cluster
 * (`ETCD_ENDPOINTS`); this exists so `npm test` and `npm run demo` need nothing
 * but Debian's `etcd-server` package.
 *
 * ```ts
 * const etcd = await startEmbeddedEtcd();
 * const registry = etcdRegistry({ endpoints: etcd.endpoints });
 * await etcd.stop();
 * ```
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface EmbeddedEtcdOptions {
  /** 1 (default) or 3 members. A 3-member cluster uses 50 ms heartbeats and a 500 ms election timeout. */
  members?: 1 | 3;
  /** Data directory (kept on `stop()`). Default: a temporary one, removed on `stop()`. */
  dataDir?: string;
  /** Client port of the first member (the others take the next ones). Default: free ports. */
  clientPort?: number;
  /** etcd's own log level, written to this process's stderr at `debug`/`info`. Default `error` (kept, shown on failure). */
  logLevel?: "debug" | "info" | "warn" | "error";
  /** The etcd binary. Default: `ETCD_BIN`, else `etcd` on the PATH. */
  binary?: string;
  /** How long to wait for the cluster to become healthy, in milliseconds. Default 20000. */
  startTimeoutMs?: number;
}

export interface EmbeddedEtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  /** The process id, while running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Sends `signal` (default SIGKILL) and resolves when the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member again on the same ports and data dir; resolves when it is healthy. */
  start(): Promise<void>;
}

export interface EmbeddedEtcd {
  /** Client URLs of all members. */
  readonly endpoints: string[];
  readonly members: EmbeddedEtcdMember[];
  /** The member that is currently raft leader. */
  leader(): Promise<EmbeddedEtcdMember>;
  /** Stops every member; removes the data dir unless one was given. */
  stop(): Promise<void>;
  /** Stops every member and starts them again on the same data; resolves when healthy. */
  restart(): Promise<void>;
}

const live = new Set<ChildProcess>();
/** Temporary data dirs still in use, removed by the exit hook if `stop()` never ran. */
const ownedDirs = new Set<string>();
let exitHookInstalled = false;

/** Starts etcd and resolves once every member reports healthy. */
export async function startEmbeddedEtcd(options: EmbeddedEtcdOptions = {}): Promise<EmbeddedEtcd> {
  const count = options.members ?? 1;
  if (count !== 1 && count !== 3) throw new Error(`embedded etcd: members must be 1 or 3, got ${count}`);
  const binary = findBinary(options.binary ?? process.env.ETCD_BIN ?? "etcd");
  const ownsDir = options.dataDir === undefined;
  const root = options.dataDir ?? mkdtempSync(join(tmpdir(), "protomesh-etcd-"));
  if (ownsDir) ownedDirs.add(root);
  installExitHook();
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const freePorts = await findFreePorts(options.clientPort === undefined ? 2 * count : count);
  const clientPorts = options.clientPort === undefined ? freePorts.splice(0, count) : range(count).map((i) => options.clientPort! + i);
  const peerPorts = freePorts;
  const names = range(count).map((i) => `m${i + 1}`);
  const cluster = names.map((n, i) => `${n}=http://127.0.0.1:${peerPorts[i]}`).join(",");
  const token = `protomesh-${randomBytes(4).toString("hex")}`;
  const members = names.map((name, i) => {
    const dataDir = count === 1 ? root : join(root, name);
    mkdirSync(dataDir, { recursive: true });
    const client = `http://127.0.0.1:${clientPorts[i]}`;
    const peer = `http://127.0.0.1:${peerPorts[i]}`;
    const args = [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${cluster}`,
      `--initial-cluster-token=${token}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      `--log-level=${options.logLevel ?? "error"}`,
      ...(count === 3 ? ["--heartbeat-interval=50", "--election-timeout=500"] : []),
    ];
    return new Member(name, client, binary, args, options.logLevel === "debug" || options.logLevel === "info");
  });

  const startAll = async () => {
    await Promise.all(members.map((m) => m.start(timeoutMs)));
  };
  try {
    await startAll();
  } catch (err) {
    await Promise.all(members.map((m) => m.kill("SIGKILL")));
    if (ownsDir) removeDir(root);
    throw err;
  }

  return {
    endpoints: members.map((m) => m.clientUrl),
    members: members.map((m) => m.handle),
    leader: async () => members[await findLeader(members)].handle,
    async stop() {
      await Promise.all(members.map((m) => m.shutdown()));
      if (ownsDir) removeDir(root);
    },
    async restart() {
      await Promise.all(members.map((m) => m.shutdown()));
      await startAll();
    },
  };
}

class Member {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly output: string[] = [];
  readonly handle: EmbeddedEtcdMember;

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    private readonly binary: string,
    private readonly args: string[],
    private readonly echo: boolean,
  ) {
    const self = this;
    this.handle = {
      name,
      clientUrl,
      get pid() {
        return self.child?.pid;
      },
      get running() {
        return self.child !== undefined;
      },
      kill: (signal = "SIGKILL") => self.kill(signal),
      start: () => self.start(20_000),
    };
  }

  async start(timeoutMs: number): Promise<void> {
    if (this.child) return;
    const child = spawn(this.binary, this.args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    live.add(child);
    let failure: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once("error", (err) => {
        failure = err;
        resolve();
      });
      child.once("exit", (code, signal) => {
        failure ??= new Error(`etcd member ${this.name} exited (${signal ?? `code ${code}`})`);
        resolve();
      });
    }).finally(() => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        if (this.echo) process.stderr.write(chunk);
        this.output.push(...chunk.toString().split("\n").filter(Boolean));
        if (this.output.length > 40) this.output.splice(0, this.output.length - 40);
      });
    }
    // The member must not keep the parent alive on its own; the exit hook kills it.
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

    const deadline = Date.now() + timeoutMs;
    while (!(await isHealthy(this.clientUrl))) {
      if (failure || this.child !== child) {
        throw new Error(`${failure?.message ?? `etcd member ${this.name} stopped`} while starting:\n${this.output.slice(-15).join("\n")}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`etcd member ${this.name} not healthy after ${timeoutMs} ms:\n${this.output.slice(-15).join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it takes more than 5 s. */
  async shutdown(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const force = setTimeout(() => child.kill("SIGKILL"), 5000);
    await this.kill("SIGTERM");
    clearTimeout(force);
  }

  /** This member's raft id and the leader id it reports, via the gRPC gateway. */
  async status(): Promise<{ id: string; leader: string } | undefined> {
    const body = await postJson(`${this.clientUrl}/v3/maintenance/status`, {});
    const header = (body as { header?: { member_id?: string } } | undefined)?.header;
    const leader = (body as { leader?: string } | undefined)?.leader;
    return header?.member_id && leader && leader !== "0" ? { id: header.member_id, leader } : undefined;
  }
}

async function findLeader(members: Member[]): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const statuses = await Promise.all(members.map((m) => (m.handle.running ? m.status() : Promise.resolve(undefined))));
    const leader = statuses.find((s) => s !== undefined)?.leader;
    const index = statuses.findIndex((s) => s?.id === leader);
    if (index >= 0) return index;
    if (Date.now() > deadline) throw new Error("embedded etcd: no leader within 10 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function findBinary(name: string): string {
  const candidates = name.includes("/") ? [name] : (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(
    `etcd binary "${name}" not found: install Debian's etcd-server (apt-get install -y etcd-server), set ETCD_BIN, or set ETCD_ENDPOINTS to use an existing cluster`,
  );
}

async function findFreePorts(n: number): Promise<number[]> {
  // Hold every listener until all ports are known, so no port is handed out twice.
  const servers = await Promise.all(
    range(n).map(
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function isHealthy(clientUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${clientUrl}/health`, { timeout: 1000 }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(text)));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function postJson(url: string, body: unknown): Promise<unknown> {
  return new Promise((resolve) => {
    const req = request(url, { method: "POST", timeout: 1000, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => {
        try {
          resolve(JSON.parse(text));
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
    req.end(JSON.stringify(body));
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Covers a process.exit() (mocha --exit, a demo's Ctrl-C handler) before stop() ran.
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
    for (const dir of ownedDirs) removeDir(dir);
  });
}

function removeDir(dir: string): void {
  ownedDirs.delete(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: a temp dir
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
