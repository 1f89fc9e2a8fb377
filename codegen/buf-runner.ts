import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError } from "../cli/command";
import { packageRoot } from "../cli/package-root";
import { installCommand } from "./toolchain";

/**
 * Running the buf CLI that ships inside the `@bufbuild/buf` npm package, with
 * the protoc plugins protomesh depends on reachable on its PATH.
 */

// Platform packages of @bufbuild/buf, which hold the native binary. Running it
// directly saves the node wrapper that `@bufbuild/buf/bin/buf` would start.
const PLATFORM_PACKAGES: Record<string, string> = {
  "darwin arm64": "@bufbuild/buf-darwin-arm64",
  "darwin x64": "@bufbuild/buf-darwin-x64",
  "linux arm64": "@bufbuild/buf-linux-aarch64",
  "linux arm": "@bufbuild/buf-linux-armv7",
  "linux x64": "@bufbuild/buf-linux-x64",
  "win32 arm64": "@bufbuild/buf-win32-arm64",
  "win32 x64": "@bufbuild/buf-win32-x64",
};

/** How to start buf: a program and the arguments that precede buf's own. */
export interface BufCommand {
  readonly file: string;
  readonly prefix: readonly string[];
}

/**
 * Locates buf. `PROTOMESH_BUF` (a path to a buf binary) wins; otherwise the
 * binary from `@bufbuild/buf` as protomesh resolves it. Throws `CliError` when
 * there is none.
 */
export function findBuf(env: NodeJS.ProcessEnv): BufCommand {
  const override = env.PROTOMESH_BUF;
  if (override) {
    if (!isExecutable(override)) throw new CliError(`buf not found: PROTOMESH_BUF=${override} is not an executable file`);
    return { file: override, prefix: [] };
  }
  let wrapperDir: string;
  try {
    wrapperDir = path.dirname(require.resolve("@bufbuild/buf/package.json", { paths: [packageRoot()] }));
  } catch {
    throw new CliError(`compiling .proto files needs @bufbuild/buf, which is not installed. Run: ${installCommand(["@bufbuild/buf"])}`);
  }
  const platformPackage = PLATFORM_PACKAGES[`${process.platform} ${process.arch}`];
  if (platformPackage) {
    const exe = process.platform === "win32" ? "bin/buf.exe" : "bin/buf";
    try {
      const native = require.resolve(`${platformPackage}/${exe}`, { paths: [wrapperDir] });
      if (isExecutable(native)) return { file: native, prefix: [] };
    } catch {
      // Fall through to the wrapper, which knows more ways to find the binary.
    }
  }
  const wrapper = path.join(wrapperDir, "bin", "buf");
  if (!fs.existsSync(wrapper)) throw new CliError(`buf not found: ${wrapperDir} has no bin/buf (reinstall @bufbuild/buf)`);
  return { file: process.execPath, prefix: [wrapper] };
}

/**
 * Writes `protoc-gen-protomesh` and `protoc-gen-ts_proto` launchers into `dir`,
 * so a template naming them works in a project without `node_modules/.bin`
 * entries for them (protomesh installed globally, run through npx, or this
 * repository itself). Returns `dir`, to be put first on PATH.
 */
export function writePluginShims(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const plugins: Record<string, string> = {
    "protoc-gen-protomesh": path.join(packageRoot(), "bin", "protoc-gen-protomesh.js"),
  };
  try {
    plugins["protoc-gen-ts_proto"] = require.resolve("ts-proto/protoc-gen-ts_proto", { paths: [packageRoot()] });
  } catch {
    // Without ts-proto a template naming it fails in buf with "not found", which says enough.
  }
  for (const [name, script] of Object.entries(plugins)) {
    if (process.platform === "win32") {
      fs.writeFileSync(path.join(dir, `${name}.cmd`), `@"${process.execPath}" "${script}" %*\r\n`);
    } else {
      fs.writeFileSync(path.join(dir, name), `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(script)} "$@"\n`, { mode: 0o755 });
    }
  }
  return dir;
}

/** What a finished buf run reported. */
export interface BufResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs buf with `args` in `cwd` and collects its output. */
export function runBuf(buf: BufCommand, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<BufResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(buf.file, [...buf.prefix, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => stdout.push(c));
    child.stderr.on("data", (c: Buffer) => stderr.push(c));
    child.on("error", (err) => reject(new CliError(`cannot start buf (${buf.file}): ${err.message}`)));
    child.on("close", (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      }),
    );
  });
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
