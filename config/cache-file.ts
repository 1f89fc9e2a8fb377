/**
 * The optional local copy of the last good config, so an instance that starts
 * while etcd is unreachable still starts with what it last ran. Written
 * atomically (temp file, then rename); a torn or foreign file is ignored.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { isRecord, isVersion, type VersionRecord } from "./records";

export interface CacheIdentity {
  readonly namespace: string;
  readonly env: string;
  readonly app: string;
  readonly type: string;
}

interface CacheContents extends CacheIdentity {
  readonly record: VersionRecord;
  readonly savedAt: string;
}

export function writeCacheFile(file: string, identity: CacheIdentity, record: VersionRecord): void {
  const contents: CacheContents = { ...identity, record, savedAt: new Date().toISOString() };
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

/** The cached record if the file exists and belongs to `identity`; otherwise why not. */
export function readCacheFile(file: string, identity: CacheIdentity): { ok: true; record: VersionRecord; savedAt: string } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === "ENOENT" ? "no cache file" : `unreadable cache file (${code ?? (err as Error).message})` };
  }
  if (!isRecord(parsed) || !isRecord(parsed.record)) return { ok: false, reason: "cache file has no record" };
  for (const k of ["namespace", "env", "app", "type"] as const) {
    if (parsed[k] !== identity[k]) return { ok: false, reason: `cache file is for ${k} ${JSON.stringify(parsed[k])}, not ${JSON.stringify(identity[k])}` };
  }
  const record = parsed.record;
  if (!isVersion(record.version) || !isRecord(record.value)) return { ok: false, reason: "cache file record is malformed" };
  return { ok: true, record: record as unknown as VersionRecord, savedAt: String(parsed.savedAt) };
}
