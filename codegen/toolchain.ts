import * as fs from "node:fs";
import * as path from "node:path";
import { CliError } from "../cli/command";
import { packageRoot } from "../cli/package-root";

/**
 * The code-generation toolchain is not part of what a service runs: buf (a 90 MB binary),
 * ts-proto and protoplugin (which pull in the TypeScript compiler and dprint) are installed as
 * dev dependencies where code is generated — as connect-es users install
 * `@bufbuild/protoc-gen-es` and ts-proto users install ts-proto. They are deliberately not
 * declared as (optional) peers: npm marks a package that is both a project's dev dependency and
 * an optional peer of one of its dependencies "devOptional", and `npm ci --omit=dev` then keeps
 * it, so a production install would carry the generator. The commands that compile protos ask
 * for what is missing here, in one line, with the ranges protomesh is developed and tested with.
 */

/** What `protomesh gen` runs: buf, ts-proto and protoc-gen-protomesh's plugin library. */
export const GENERATOR_PACKAGES = ["@bufbuild/buf", "@bufbuild/protoplugin", "ts-proto"] as const;

/** What only compiles protos (`protomesh docs`, `config import --schema`): buf. */
export const COMPILER_PACKAGES = ["@bufbuild/buf"] as const;

/**
 * Throws a `CliError` naming the install command when any of `packages` cannot be resolved
 * from the project (protomesh resolves them from where it is installed, so an app's own
 * dev dependencies count).
 */
export function requireToolchain(what: string, packages: readonly string[]): void {
  const missing = packages.filter((name) => !isInstalled(name));
  if (missing.length === 0) return;
  throw new CliError(`${what} needs ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not installed. Run: ${installCommand(missing)}`);
}

/** `npm install -D pkg@"range" …` with the ranges protomesh itself is built and tested with. */
export function installCommand(packages: readonly string[]): string {
  const ranges = toolRanges();
  return `npm install -D ${packages.map((p) => (ranges[p] ? `${p}@"${ranges[p]}"` : p)).join(" ")}`;
}

function isInstalled(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`, { paths: [packageRoot()] });
    return true;
  } catch (err) {
    // A package whose `exports` hides package.json is installed all the same.
    return (err as NodeJS.ErrnoException).code === "ERR_PACKAGE_PATH_NOT_EXPORTED";
  }
}

function toolRanges(): Record<string, string> {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
    return manifest.devDependencies ?? {};
  } catch {
    return {};
  }
}
