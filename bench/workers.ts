/**
 * Starting worker processes: each benchmark server and client runs in its own Node
 * process, pinned to a core when the machine allows, and is driven over IPC.
 */
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import * as path from "node:path";
import { READY_MESSAGE, type CommandReply } from "./ipc";

const ROOT = path.join(__dirname, "..");
const RUNNER = path.join(ROOT, "bin", "run.js");

/** Which core each side gets. `undefined` means the process may run on any core. */
export interface CpuPlan {
  readonly server: number | undefined;
  readonly client: number | undefined;
  /** One line for the report. */
  readonly description: string;
}

/** Servers (and etcd) on core 0, clients on core 1, when `taskset` exists and there are two cores or more. */
export function planCpus(pin: boolean): CpuPlan {
  const cores = availableParallelism();
  const haveTaskset = spawnSync("taskset", ["-V"], { stdio: "ignore" }).status === 0;
  if (pin && cores >= 2 && haveTaskset) {
    return { server: 0, client: 1, description: `server processes and etcd pinned to core 0, client processes to core 1 (taskset); each side had 1 of ${cores} cores` };
  }
  const why = !pin ? "pinning turned off (--no-pin)" : cores < 2 ? "only one core" : "taskset not found";
  return { server: undefined, client: undefined, description: `not pinned (${why}): servers, clients and etcd shared all ${cores} cores` };
}

/** Pins an already running process (every thread of it) to `cpu`. */
export function pinProcess(pid: number, cpu: number | undefined): void {
  if (cpu === undefined) return;
  spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
}

export interface WorkerOptions {
  /** Core to pin to; unpinned when undefined. */
  cpu?: number;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Extra Node flags (`--expose-gc`, …). */
  nodeArgs?: string[];
  /** Write a CPU profile of the worker to `<dir>/<name>.cpuprofile` when it exits. */
  profileDir?: string;
  /**
   * Run the worker under `valgrind --tool=callgrind` with instrumentation off; turn it on and
   * dump counts with {@link BenchWorker.callgrind}. Output files are `<file>.<n>`.
   */
  callgrindOut?: string;
  /**
   * Run the worker from JavaScript bundled ahead of time (esbuild, no `keepNames`) with plain
   * `node`, instead of through tsx. tsx compiles every closure with `keepNames`, which wraps
   * it in a naming call; the bundle shows what the same code costs as a compiled deployment.
   */
  compiled?: boolean;
  /** How long to wait for the worker to start, in ms (default 180 s: a dozen workers compiling TypeScript at once on a busy 2-core machine take minutes). */
  startTimeoutMs?: number;
}

const live = new Set<BenchWorker>();

/** A worker process and the commands it answers. */
export class BenchWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string }>();
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    child.on("message", (raw: unknown) => {
      const reply = raw as CommandReply;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`${this.name}: ${waiter.command} failed: ${reply.error}`));
    });
    void this.exited.then((code) => {
      live.delete(this);
      for (const [, waiter] of this.pending) waiter.reject(new Error(`${this.name} exited (code ${code}) during ${waiter.command}`));
      this.pending.clear();
    });
  }

  /** Starts `file` (a TypeScript worker under bench/) and resolves once it answers commands. */
  static async start(name: string, file: string, options: WorkerOptions = {}): Promise<BenchWorker> {
    const script = path.join(__dirname, file);
    const nodeArgs = [...(options.nodeArgs ?? [])];
    if (options.profileDir) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${path.resolve(options.profileDir)}`, `--cpu-prof-name=${name}.cpuprofile`);
    // Under callgrind, valgrind is the executable and node its first argument; the IPC channel
    // travels in the environment, so node under valgrind still talks to us.
    const valgrind = options.callgrindOut
      ? { execPath: "valgrind", execArgv: ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${path.resolve(options.callgrindOut)}`, `--log-file=${path.resolve(options.callgrindOut)}.log`, process.execPath, ...nodeArgs] }
      : undefined;
    const [entry, entryArgs] = options.compiled ? [bundle(script), []] : [RUNNER, [script]];
    const child = fork(entry, entryArgs, {
      cwd: ROOT,
      execArgv: valgrind?.execArgv ?? nodeArgs,
      ...(valgrind ? { execPath: valgrind.execPath } : {}),
      env: { ...process.env, PROTOMESH_LOG_LEVEL: process.env.PROTOMESH_LOG_LEVEL ?? "error", ...options.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const worker = new BenchWorker(name, child);
    live.add(worker);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${options.startTimeoutMs ?? 180_000} ms`)), options.startTimeoutMs ?? 180_000);
      const onMessage = (message: unknown) => {
        if (message !== READY_MESSAGE) return;
        clearTimeout(timer);
        child.off("message", onMessage);
        resolve();
      };
      child.on("message", onMessage);
      void worker.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (code ${code}) while starting`));
      });
    });
    // Pinned once started (start-up, mostly compiling TypeScript, may use every core):
    // every thread that exists now is moved, and threads made later inherit the mask.
    pinProcess(child.pid!, options.cpu);
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command to callgrind in this worker (`-i on`, `-i off`, `-z`, `-d`); waits until it is done. */
  async callgrind(...args: string[]): Promise<void> {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn("callgrind_control", [...args, String(this.pid)], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.once("close", (code) => resolve({ code, out }));
    });
    if (r.code !== 0 || !/OK\./.test(r.out)) throw new Error(`${this.name}: callgrind_control ${args.join(" ")} failed: ${r.out.trim()}`);
  }

  /** Sends a command and resolves with the worker's reply. */
  call<T>(command: string, args: object = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.child.send({ id, command, args }, (err) => {
        if (!err) return;
        this.pending.delete(id);
        reject(new Error(`${this.name}: cannot send ${command}: ${err.message}`));
      });
    });
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** Closes the IPC channel (the worker exits on its own), then kills it if it lingers. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const bundles = new Map<string, string>();

/**
 * Bundles a TypeScript entry point and the repository code it imports into one CommonJS file
 * (packages stay `require`d from node_modules), once per process: under `.tmp/bench-js/` by
 * default, or at `outfile`.
 */
function bundle(script: string, outfile?: string): string {
  let out = bundles.get(script);
  if (out) return out;
  out = outfile ?? path.join(ROOT, ".tmp", "bench-js", `${path.basename(script, ".ts")}.js`);
  // esbuild comes with tsx; loaded only when a compiled worker is asked for.
  const esbuild = require("esbuild") as { buildSync(o: object): unknown };
  esbuild.buildSync({ entryPoints: [script], bundle: true, platform: "node", format: "cjs", target: "node20", packages: "external", tsconfig: path.join(ROOT, "tsconfig.json"), outfile: out, logLevel: "warning" });
  bundles.set(script, out);
  return out;
}

/** Whether this process runs from a bundle made by {@link runCompiled} (or for a compiled worker). */
export function runningCompiled(): boolean {
  return !__filename.endsWith(".ts");
}

/**
 * `--compiled` for a bench that serves from its own process: runs `script` again from its esbuild
 * bundle (no `keepNames`, the way a deployment runs compiled JavaScript) with plain `node` and the
 * same arguments, and resolves with its exit code. The bundle is written beside the script
 * (`bench/.<name>.compiled.js`) so that every `__dirname` in it means what it does in the source.
 */
export function runCompiled(script: string, args: readonly string[]): Promise<number> {
  const out = bundle(script, path.join(path.dirname(script), `.${path.basename(script, ".ts")}.compiled.js`));
  const child = spawn(process.execPath, [out, ...args], { cwd: ROOT, stdio: "inherit" });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

/** Stops every worker still running (used on the way out, also after a failure). */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...live].map((w) => w.stop()));
}

process.on("exit", () => {
  for (const worker of live) void worker.kill("SIGKILL");
});
