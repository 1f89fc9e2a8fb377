/**
 * The demo's child processes: started with the demo's environment (so a marker variable finds
 * them all), ready once a line of their output says so, stopped with SIGTERM (each deregisters
 * and drains) and awaited until they have exited.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as readline from "node:readline";

/**
 * Every child started here and not yet exited, ready or not: a stop that comes while children
 * are still starting (Ctrl-C, or a SIGTERM to the demo alone) must reach those too.
 */
const live = new Set<ChildProcess>();

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** The match of the ready pattern in the output line that said the process is ready. */
  readonly ready: RegExpExecArray;
}

/** Starts `node args…`; resolves once a stdout line matches `ready`, rejects if it exits first or takes over 3 min (a busy laptop compiling WASM databases is slow). */
export function startChild(name: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv): Promise<Child> {
  const proc = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL"); // not handed to the caller yet, so nobody else would stop it
      reject(new Error(`${name} did not start within 3 min`));
    }, 180_000);
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on("line", (line) => {
      const m = ready.exec(line);
      if (!m) return;
      clearTimeout(timer);
      lines.removeAllListeners("line");
      resolve({ name, proc, ready: m });
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code}`));
    });
  });
}

/** SIGTERM, then resolves once the process has exited (at once if it already has). */
export function stopChild(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
  });
}

/** Stops every child that is still running, including those that never said they were ready. */
export function stopAllChildren(): Promise<void> {
  return Promise.all([...live].map((proc) => stopChild(proc))).then(() => undefined);
}
