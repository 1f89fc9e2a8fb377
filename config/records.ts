/**
 * The values stored under a config prefix, and their size limits. Reading is
 * defensive, as in the registry: anyone with write access to etcd can put
 * anything there, so decoding returns a reason instead of throwing.
 */
import { checkLabels, type Labels } from "./labels";
import { MAX_VERSION } from "./keys";

/** Largest config value (its canonical JSON), in bytes. */
export const MAX_VALUE_BYTES = 256 * 1024;
/** Largest stored version record: the value plus who/when/comment. */
export const MAX_RECORD_BYTES = MAX_VALUE_BYTES + 8 * 1024;
/** Largest `current` or `gray` pointer. */
export const MAX_POINTER_BYTES = 4 * 1024;
export const MAX_COMMENT_LENGTH = 1000;
export const MAX_AUTHOR_LENGTH = 200;

/** How a version came to be. */
export type VersionKind = "set" | "import" | "rollback" | "gray" | "promote";
const KINDS: readonly VersionKind[] = ["set", "import", "rollback", "gray", "promote"];

/** A plain JSON object: the proto JSON form of a config. */
export type JsonObject = { [key: string]: JsonValueLike };
export type JsonValueLike = string | number | boolean | null | JsonValueLike[] | { [key: string]: JsonValueLike };

/** One numbered version, as stored (immutable once written). */
export interface VersionRecord {
  readonly version: number;
  /** Full proto name of the schema it was validated against ("" when written without one). */
  readonly type: string;
  /** The config, in canonical proto JSON. */
  readonly value: JsonObject;
  readonly author: string;
  /** ISO 8601 time of the write. */
  readonly at: string;
  readonly comment: string;
  readonly kind: VersionKind;
  /** For `rollback` and `promote`: the version whose value this one copies. */
  readonly from?: number;
  /** The version that was current when this one was written (0 if none). */
  readonly base: number;
  /** For `gray`: the labels an instance needs to get this version. */
  readonly match?: Labels;
}

/** The `gray` pointer: one version applied only to instances whose labels match. */
export interface GrayRule {
  readonly version: number;
  readonly match: Labels;
  readonly author: string;
  readonly at: string;
  readonly comment: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Encodes a record; throws if it is over the size limit. */
export function encodeRecord(record: VersionRecord): string {
  const text = JSON.stringify(record);
  const valueBytes = Buffer.byteLength(JSON.stringify(record.value));
  if (valueBytes > MAX_VALUE_BYTES) {
    throw new Error(`config value is ${valueBytes} bytes, over the ${MAX_VALUE_BYTES}-byte limit`);
  }
  if (Buffer.byteLength(text) > MAX_RECORD_BYTES) throw new Error(`version record is over the ${MAX_RECORD_BYTES}-byte limit`);
  return text;
}

export function decodeRecord(bytes: Buffer, expectedVersion: number): Decoded<VersionRecord> {
  const parsed = parseObject(bytes, MAX_RECORD_BYTES);
  if (!parsed.ok) return parsed;
  const r = parsed.value;
  if (r.version !== expectedVersion) return fail(`"version" ${JSON.stringify(r.version)} does not match the key`);
  if (typeof r.type !== "string") return fail(`"type" is not a string`);
  if (!isRecord(r.value)) return fail(`"value" is not a JSON object`);
  if (Buffer.byteLength(JSON.stringify(r.value)) > MAX_VALUE_BYTES) return fail(`"value" is over the ${MAX_VALUE_BYTES}-byte limit`);
  if (typeof r.author !== "string") return fail(`"author" is not a string`);
  if (typeof r.at !== "string" || Number.isNaN(Date.parse(r.at))) return fail(`"at" is not a time`);
  if (typeof r.comment !== "string") return fail(`"comment" is not a string`);
  if (!(KINDS as readonly unknown[]).includes(r.kind)) return fail(`"kind" is not one of ${KINDS.join(", ")}`);
  if (r.from !== undefined && !isVersion(r.from)) return fail(`"from" is not a version number`);
  if (!(r.base === 0 || isVersion(r.base))) return fail(`"base" is not a version number`);
  let match: Labels | undefined;
  if (r.match !== undefined) {
    const labels = readLabels(r.match);
    if (!labels) return fail(`"match" is not a set of labels`);
    match = labels;
  }
  return {
    ok: true,
    value: {
      version: r.version as number,
      type: r.type,
      value: r.value as JsonObject,
      author: r.author,
      at: r.at,
      comment: r.comment,
      kind: r.kind as VersionKind,
      ...(r.from !== undefined ? { from: r.from as number } : {}),
      base: r.base as number,
      ...(match ? { match } : {}),
    },
  };
}

export function encodeCurrent(version: number): string {
  return JSON.stringify({ version });
}

export function decodeCurrent(bytes: Buffer): Decoded<number> {
  const parsed = parseObject(bytes, MAX_POINTER_BYTES);
  if (!parsed.ok) return parsed;
  return isVersion(parsed.value.version) ? { ok: true, value: parsed.value.version } : fail(`"version" is not a version number`);
}

export function encodeGray(rule: GrayRule): string {
  const text = JSON.stringify(rule);
  if (Buffer.byteLength(text) > MAX_POINTER_BYTES) throw new Error(`gray rule is over the ${MAX_POINTER_BYTES}-byte limit: shorten its comment or labels`);
  return text;
}

export function decodeGray(bytes: Buffer): Decoded<GrayRule> {
  const parsed = parseObject(bytes, MAX_POINTER_BYTES);
  if (!parsed.ok) return parsed;
  const g = parsed.value;
  if (!isVersion(g.version)) return fail(`"version" is not a version number`);
  const match = readLabels(g.match);
  if (!match || Object.keys(match).length === 0) return fail(`"match" is not a non-empty set of labels`);
  if (typeof g.author !== "string" || typeof g.at !== "string" || typeof g.comment !== "string") {
    return fail(`"author", "at" and "comment" must be strings`);
  }
  return { ok: true, value: { version: g.version, match, author: g.author, at: g.at, comment: g.comment } };
}

/** Throws unless `author` and `comment` fit the limits. */
export function checkAudit(author: string, comment: string): void {
  if (author.length === 0 || author.length > MAX_AUTHOR_LENGTH) throw new Error(`author must be 1-${MAX_AUTHOR_LENGTH} characters`);
  if (comment.length > MAX_COMMENT_LENGTH) throw new Error(`comment is over ${MAX_COMMENT_LENGTH} characters`);
}

export function isVersion(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x > 0 && x <= MAX_VERSION;
}

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function readLabels(x: unknown): Labels | undefined {
  if (!isRecord(x) || !Object.values(x).every((v) => typeof v === "string")) return undefined;
  try {
    return checkLabels(x as Record<string, string>);
  } catch {
    return undefined;
  }
}

function parseObject(bytes: Buffer, limit: number): Decoded<Record<string, unknown>> {
  if (bytes.length > limit) return fail(`value is ${bytes.length} bytes, over the ${limit}-byte limit`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return fail("value is not JSON");
  }
  return isRecord(parsed) ? { ok: true, value: parsed } : fail("value is not a JSON object");
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
