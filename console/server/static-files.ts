/**
 * Serves the built UI (Vite's output) from disk. Assets under `assets/` have
 * content hashes in their names and are cached for a year; everything else,
 * and any unknown path (client-side routes), gets `index.html`, uncached.
 */
import * as fs from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";
import { packageRoot } from "../../cli/package-root";
import { SECURITY_HEADERS } from "./http-io";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".ico": "image/x-icon",
};

/** Where `npm run build` puts the UI: `dist/console-ui` in the package. */
export function defaultAssetsDir(): string {
  return path.join(packageRoot(), "dist", "console-ui");
}

/** Throws with the command to run when the UI was not built. */
export function checkAssets(dir: string): void {
  if (!fs.existsSync(path.join(dir, "index.html"))) {
    throw new Error(`the console UI is not built (no ${path.join(dir, "index.html")}): run \`npm run build:console\` in the protomesh package`);
  }
}

export function serveStatic(dir: string, urlPath: string, res: http.ServerResponse): void {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    decoded = "/";
  }
  const rel = path.normalize(decoded).replace(/^([/\\])+/, "");
  let file = path.join(dir, rel);
  if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) file = path.join(dir, "index.html");
  const immutable = file.startsWith(path.join(dir, "assets") + path.sep);
  res.writeHead(200, {
    "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
    "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-store",
    // The UI loads nothing from elsewhere; frames only from itself (the API docs page).
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'",
    ...SECURITY_HEADERS,
  });
  fs.createReadStream(file).pipe(res);
}
