/**
 * Real processes for the transaction crash specs: coordinators (`protomesh tx-server`), banks
 * (examples/transfer/bank.ts) and a message producer, each started and awaited until ready.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";

const ROOT = path.join(__dirname, "..", "..");

export interface Proc {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  /** The first stdout line that matched the ready pattern. */
  readonly readyLine: string;
  /** Waits for a later stdout line matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits for a stderr line matching `pattern` (seen since the start). */
  errLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Every stderr line so far. */
  readonly errLines: readonly string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startProc(args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 60_000): Promise<Proc> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, PROTOMESH_LOG_LEVEL: process.env.PROTOMESH_LOG_LEVEL ?? "error", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const label = `[${path.basename(args[1] ?? "")} ${args.includes("--name") ? args[args.indexOf("--name") + 1] : args[2] ?? ""} pid ${proc.pid}]`;
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  /** The lines of one output stream, and a wait for the first that matches. */
  const watch = (input: NodeJS.ReadableStream, echo?: (l: string) => void) => {
    const lines: string[] = [];
    const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
    readline.createInterface({ input }).on("line", (l) => {
      echo?.(l);
      lines.push(l);
      for (const w of waiters.splice(0)) {
        if (w.re.test(l)) w.resolve(l);
        else waiters.push(w);
      }
    });
    const wait = (re: RegExp, ms = timeoutMs) =>
      new Promise<string>((resolve, reject) => {
        const seen = lines.find((l) => re.test(l));
        if (seen) return resolve(seen);
        const t = setTimeout(() => reject(new Error(`${args.slice(1).join(" ")}: no line matching ${re} within ${ms} ms`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
        void exited.then((code) => reject(new Error(`${args.slice(1).join(" ")} exited (${code}) before printing ${re}`)));
      });
    return { lines, wait };
  };
  const errs = watch(proc.stderr!, (l) => process.stderr.write(`${label} ${l}\n`));
  const line = watch(proc.stdout!).wait;
  const readyLine = await line(ready).catch((err: unknown) => {
    proc.kill("SIGKILL");
    throw err;
  });
  return {
    proc,
    exited,
    readyLine,
    line,
    errLine: errs.wait,
    errLines: errs.lines,
    async kill(signal = "SIGKILL") {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}

export function startCoordinatorProc(o: { postgres: string; endpoints: string[]; namespace: string; name: string; id: string }): Promise<Proc> {
  return startProc(
    [path.join(ROOT, "bin", "protomesh.js"), "tx-server", "--postgres", o.postgres, "--endpoints", o.endpoints.join(","), "--namespace", o.namespace, "--name", o.name, "--instance-id", o.id, "--listen", "127.0.0.1:0", "--poll-ms", "100", "--retry-interval-ms", "200", "--max-retry-interval-ms", "1000", "--timeout-ms", "4000", "--request-timeout-ms", "2000"],
    {},
    /serving on/,
  );
}

export function startBankProc(o: { postgres: string; endpoints: string[]; namespace: string; name: string; accounts?: string }): Promise<Proc> {
  const args = [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "examples", "transfer", "bank.ts"), "--name", o.name, "--postgres", o.postgres];
  if (o.accounts) args.push("--accounts", o.accounts);
  return startProc(args, { ETCD_ENDPOINTS: o.endpoints.join(","), PROTOMESH_NAMESPACE: o.namespace }, /^ready /);
}
