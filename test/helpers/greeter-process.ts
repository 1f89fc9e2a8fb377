import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";

const ROOT = path.join(__dirname, "..", "..");

/** A greeter server running in its own process, registered in etcd. */
export interface GreeterProcess {
  readonly id: string;
  readonly address: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** Graceful stop (SIGTERM → shutdown → exit). */
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

export interface GreeterProcessOptions {
  etcdEndpoints: string[];
  ttlSeconds?: number;
  name?: string;
  id?: string;
  weight?: number;
  version?: string;
  graceMs?: number;
  delayMs?: number;
  namespace?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts test/fixtures/greeter-process.ts and resolves once it is serving and registered. */
/** How long a greeter process may take to report ready before the start counts as failed. */
export const READY_TIMEOUT_MS = 60_000;

export function startGreeterProcess(options: GreeterProcessOptions): Promise<GreeterProcess> {
  const args = [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "test", "fixtures", "greeter-process.ts")];
  const add = (name: string, value: unknown) => value !== undefined && args.push(`--${name}`, String(value));
  add("ttl", options.ttlSeconds);
  add("name", options.name);
  add("id", options.id);
  add("weight", options.weight);
  add("version", options.version);
  add("grace", options.graceMs);
  add("delay-ms", options.delayMs);
  const proc = spawn(process.execPath, args, {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: options.etcdEndpoints.join(","),
      PROTOMESH_LOG_LEVEL: process.env.PROTOMESH_LOG_LEVEL ?? "warn",
      ...(options.namespace ? { PROTOMESH_NAMESPACE: options.namespace } : {}),
      ...options.env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    // Generous: a cold start compiles the TypeScript sources, which takes many seconds on a loaded machine.
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`greeter process did not become ready within ${READY_TIMEOUT_MS / 1000} s`));
    }, READY_TIMEOUT_MS);
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on("line", (line) => {
      let msg: { ready?: boolean; address?: string; id?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (!msg.ready) return;
      clearTimeout(timer);
      resolve({
        id: msg.id!,
        address: msg.address!,
        pid: proc.pid!,
        proc,
        exited,
        stop: async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
          await exited;
        },
        kill: (signal) => void proc.kill(signal),
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`greeter process exited with code ${code} before it was ready`));
    });
  });
}
