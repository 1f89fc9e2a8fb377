/**
 * Support for the packed-install spec: pack the repository the way `npm publish` would,
 * make throw-away projects, install into them from the tarball with only the local npm
 * cache (no registry), and run commands in them.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const REPO = path.resolve(__dirname, "..", "..");

/** What a finished command left behind. */
export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}


/**
 * The environment without the npm settings of the `npm test` that runs this spec: npm passes
 * its own flags on as `npm_config_*` (`npm test --ignore-scripts` would make the spec's
 * `npm pack` skip `prepack`), and a user's fresh project never sees them. Where the npm cache
 * and config files live is kept.
 */
function withoutNpmConfig(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept = new Set(["npm_config_cache", "npm_config_userconfig", "npm_config_globalconfig", "npm_config_nodedir", "npm_config_registry"]);
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.toLowerCase().startsWith("npm_config_") || kept.has(key.toLowerCase())));
}

/**
 * Runs `command args` in `cwd` and resolves when it exits (never rejects on a non-zero exit).
 * `env` is added to this process's environment; a key set to undefined is removed.
 */
export function run(command: string, args: readonly string[], cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...withoutNpmConfig(process.env), ...options.env };
  for (const [key, value] of Object.entries(options.env ?? {})) if (value === undefined) delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 300_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like `run`, but rejects with the command's output when it exits non-zero. */
export async function runOk(command: string, args: readonly string[], cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  const result = await run(command, args, cwd, options);
  if (result.code !== 0) {
    throw new Error(`\`${command} ${args.join(" ")}\` in ${cwd} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result;
}

/** npm from the Node running the tests (so a Node 24 run packs and installs with its own npm). */
export function npm(): { command: string; prefix: string[] } {
  const beside = path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js");
  if (fs.existsSync(beside)) return { command: process.execPath, prefix: [beside] };
  return { command: "npm", prefix: [] };
}

/** Environment for npm in a throw-away project: no registry, no audit, no funding notes, no lifecycle noise. */
export const OFFLINE_NPM_ENV: NodeJS.ProcessEnv = {
  npm_config_offline: "true",
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
  npm_config_loglevel: "error",
};

/** `npm pack` of the repository into `dest`; resolves to the tarball's path. `prepack` builds `dist/`. */
export async function packRepository(dest: string): Promise<string> {
  const { command, prefix } = npm();
  const packed = await runOk(command, [...prefix, "pack", "--json", "--pack-destination", dest], REPO, { timeoutMs: 900_000 });
  const json = packed.stdout.slice(packed.stdout.indexOf("["));
  const [{ filename }] = JSON.parse(json) as Array<{ filename: string }>;
  return path.join(dest, filename);
}

let shared: Promise<string> | undefined;

/**
 * The repository packed once per test process, shared by the specs that install it (packing
 * builds everything and takes minutes); removed when the process exits.
 * PROTOMESH_TEST_TARBALL reuses a tarball packed earlier (to iterate on one spec).
 */
export function sharedTarball(): Promise<string> {
  if (process.env.PROTOMESH_TEST_TARBALL) return Promise.resolve(process.env.PROTOMESH_TEST_TARBALL);
  if (!shared) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-tarball-"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    shared = packRepository(dir);
    shared.catch(() => (shared = undefined));
  }
  return shared;
}

/**
 * Runs `npm install --offline …` in `cwd`. Registry specs (`name@range`) are written into
 * package.json first and installed from the lock, as `npm install name@range` would resolve
 * them: npm asks the registry about a package named on the command line even when the lock
 * already holds it, and there is no registry here.
 */
export function npmInstall(cwd: string, args: readonly string[]): Promise<Ran> {
  const flags = args.filter((a) => a.startsWith("-"));
  const files = args.filter((a) => !a.startsWith("-") && (a.endsWith(".tgz") || a.startsWith("/") || a.startsWith(".")));
  const specs = args.filter((a) => !a.startsWith("-") && !files.includes(a));
  if (specs.length > 0) {
    const file = path.join(cwd, "package.json");
    const manifest = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, Record<string, string> | unknown>;
    const field = flags.includes("-D") || flags.includes("--save-dev") ? "devDependencies" : "dependencies";
    const deps = { ...(manifest[field] as Record<string, string> | undefined) };
    for (const spec of specs) {
      const at = spec.lastIndexOf("@");
      if (at <= 0) throw new Error(`npmInstall: give a range with ${spec} (name@range)`);
      deps[spec.slice(0, at)] = spec.slice(at + 1);
    }
    manifest[field] = deps;
    fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  }
  reseedLock(cwd);
  const { command, prefix } = npm();
  const passed = flags.filter((f) => f !== "-D" && f !== "--save-dev");
  return runOk(command, [...prefix, "install", "--offline", ...passed, ...files], cwd, { env: OFFLINE_NPM_ENV, timeoutMs: 600_000 });
}

/** npm prunes the lock to what the project needs; put the repository's entries back before the next install. */
function reseedLock(cwd: string): void {
  const file = path.join(cwd, "package-lock.json");
  if (!fs.existsSync(file)) return;
  const lock = JSON.parse(fs.readFileSync(file, "utf8")) as { packages: Record<string, unknown> };
  const repo = JSON.parse(fs.readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, unknown> };
  for (const [key, entry] of Object.entries(repo.packages)) if (key !== "" && !(key in lock.packages)) lock.packages[key] = entry;
  fs.writeFileSync(file, JSON.stringify(lock, null, 2));
}

/**
 * Starts an empty project in `dir`: its package.json plus a package-lock.json whose entries are
 * the repository's own (its root entry replaced). Installing offline needs npm to know which
 * versions the cache holds without asking the registry; the lock names the versions this suite
 * tested, as a project's own lockfile would. npm drops the entries the project does not need.
 */
export function startProject(dir: string, manifest: Record<string, unknown>): void {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as { name: string; version: string; packages: Record<string, unknown> };
  const name = String(manifest.name);
  const version = String(manifest.version ?? "1.0.0");
  lock.name = name;
  lock.version = version;
  lock.packages[""] = { name, version };
  writeFiles(dir, { "package.json": JSON.stringify(manifest, null, 2), "package-lock.json": JSON.stringify(lock, null, 2) });
}

/** Writes `files` (relative path → text) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
}

/** The README's tour blocks: each fenced block right after a `<!-- tour:NAME -->` line, by NAME. */
export function tourBlocks(readme: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const re = /<!-- tour:([^ ]+) -->\n```[a-z]*\n([\s\S]*?)\n```/g;
  for (let m = re.exec(readme); m; m = re.exec(readme)) blocks.set(m[1], `${m[2]}\n`);
  return blocks;
}

/** Total size in bytes of the files under `dir`. */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else if (entry.isFile()) total += fs.statSync(full).size;
  }
  return total;
}
