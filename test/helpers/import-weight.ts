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
  // Loaded on first use: etcd3 (with protobufjs and proto-loader) when an etcd client is made,
  // @bufbuild/protobuf when a server builds health/reflection or a dynamic call runs, pino
  // when the default logger writes its first line.
  "deferred until used": { packages: /node_modules\/(etcd3|cockatiel|protobufjs|@grpc\/proto-loader|@bufbuild\/protobuf|pino)\// },
};

/** The files of `loaded` that NOT_AT_ROOT's entry `what` forbids. */
export function forbidden(loaded: readonly string[], what: string): string[] {
  const { ours, packages } = NOT_AT_ROOT[what];
  return loaded.filter((f) => (f.includes("/node_modules/") ? packages?.test(f) : ours?.test(f)) ?? false);
}

/** Loads `entry` (a module, or with `isCode` a snippet of code) in a fresh process and returns the module files it loaded. */
export function modulesLoadedBy(entry: string, cwd: string, preload: string[] = [], isCode = false): string[] {
  const body = isCode ? entry : `require(${JSON.stringify(entry)});`;
  const script = `${preload.map((p) => `require(${JSON.stringify(p)});`).join("")}const before = new Set(Object.keys(require.cache));${body}console.log(JSON.stringify(Object.keys(require.cache).filter((k) => !before.has(k))));`;
  const result = spawnSync(process.execPath, ["-e", script], { cwd, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`loading ${entry} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}
