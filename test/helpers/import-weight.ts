/** What `import "protomesh"` may load, and a way to list what an entry point loads. */
import { spawnSync } from "node:child_process";

/**
 * What must not load with the root entry point, by what it belongs to: our own folders (matched
 * on files outside node_modules, in the sources or in dist/) and npm packages.
 */
export const NOT_AT_ROOT: Record<string, { ours?: RegExp; packages?: RegExp }> = {
  "the code generator": { ours: /\/codegen\//, packages: /node_modules\/(@bufbuild\/buf|@bufbuild\/protoplugin|ts-proto|ts-poet|dprint-node|typescript|@typescript)\// },
  "tsx / esbuild": { packages: /node_modules\/(tsx|esbuild)\// },
  "the OpenTelemetry SDK": { packages: /node_modules\/@opentelemetry\/(?!api\/)/ },
  "other capabilities": { ours: /\/(tracing|config|explorer|apidocs|cli|gateway|transaction|console|release)\/[^/]+\.(ts|js)$/ },
  "store clients and UI tooling": { packages: /node_modules\/(pg|ioredis|better-sqlite3|@electric-sql|playwright-core|vite)\// },
};

/** The files of `loaded` that NOT_AT_ROOT's entry `what` forbids. */
export function forbidden(loaded: readonly string[], what: string): string[] {
  const { ours, packages } = NOT_AT_ROOT[what];
  return loaded.filter((f) => (f.includes("/node_modules/") ? packages?.test(f) : ours?.test(f)) ?? false);
}

/** Loads `entry` in a fresh process and returns the module files it loaded. */
export function modulesLoadedBy(entry: string, cwd: string, preload: string[] = []): string[] {
  const script = `${preload.map((p) => `require(${JSON.stringify(p)});`).join("")}const before = new Set(Object.keys(require.cache));require(${JSON.stringify(entry)});console.log(JSON.stringify(Object.keys(require.cache).filter((k) => !before.has(k))));`;
  const result = spawnSync(process.execPath, ["-e", script], { cwd, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`loading ${entry} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}
