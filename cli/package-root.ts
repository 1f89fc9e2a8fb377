import * as fs from "node:fs";
import * as path from "node:path";

let cached: string | undefined;

/**
 * The directory of protomesh's own `package.json`. The code runs from the
 * TypeScript sources (`cli/`) or from the build (`dist/cli/`), so the
 * root is found by walking up rather than by a fixed `..`.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && readName(manifest) === "protomesh") return (cached = dir);
    if (path.dirname(dir) === dir) throw new Error(`cannot find protomesh's package.json above ${__dirname}`);
  }
}

/** protomesh's version, from its `package.json`. */
export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version?: unknown };
  return typeof manifest.version === "string" ? manifest.version : "0.0.0";
}

function readName(manifest: string): unknown {
  try {
    return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: unknown }).name;
  } catch {
    return undefined;
  }
}
