/** Child processes for config specs: the stand-in app (`config-app.ts`) and the `protomesh` CLI. */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { Recorder } from "./wait";

const REPO = path.resolve(__dirname, "..", "..");

export interface AppEvent {
  event: "loaded" | "changed" | "error";
  version: number;
  greeting: string;
  source: string;
  at: number;
  message?: string;
}

export interface AppProcess {
  readonly events: Recorder<AppEvent>;
  readonly child: ChildProcess;
  /** Closes stdin (the app closes its config and exits); kills it if it lingers. */
  stop(): Promise<void>;
}

/** Starts `test/helpers/config-app.ts` for `app` with `env` added to this process's environment. */
export function startConfigApp(app: string, env: Record<string, string>): AppProcess {
  const child = spawn(process.execPath, [path.join(REPO, "bin", "run.js"), path.join(REPO, "test", "helpers", "config-app.ts"), app], {
    cwd: REPO,
    env: { ...process.env, PROTOMESH_LOG_LEVEL: "error", ...env },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const events = new Recorder<AppEvent>();
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line) as AppEvent);
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    events,
    child,
    async stop() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `protomesh config …` in a child process. */
export function runConfigCli(args: string[], env: Record<string, string>, cwd = REPO): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, "bin", "protomesh.js"), "config", ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Median and 99th percentile of `samples` (milliseconds). */
export function percentiles(samples: readonly number[]): { median: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}
