/**
 * Checks a JSON value against a proto message's JSON mapping and reports every
 * problem with its field path, where protobuf's own parser stops at the first.
 * Operators fix a whole file in one pass; the hot-reload log line says exactly
 * which field made a value unusable.
 */
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { formatPath, type PathSegment } from "./json-path";

/** One problem with a config value. `path` is empty for the value as a whole. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

export interface CheckOptions {
  /** Unknown fields are issues (default) or are collected in `unknown` and otherwise ignored. */
  unknownFields?: "reject" | "ignore";
}

export interface CheckReport {
  readonly issues: ConfigIssue[];
  /** With `unknownFields: "ignore"`: the unknown fields that were seen. */
  readonly unknown: ConfigIssue[];
}

const MAX_DEPTH = 64;

/** Checks `json` against `desc`; an empty `issues` means protobuf's JSON parser will accept it. */
export function checkJson(desc: DescMessage, json: unknown, options: CheckOptions = {}): CheckReport {
  const checker = new Checker(options.unknownFields ?? "reject");
  if (!isPlainObject(json)) checker.issue([], `expected a JSON object, got ${describe(json)}`);
  else checker.message(desc, json, [], 0);
  return { issues: checker.issues, unknown: checker.unknown };
}

class Checker {
  readonly issues: ConfigIssue[] = [];
  readonly unknown: ConfigIssue[] = [];

  constructor(private readonly unknownFields: "reject" | "ignore") {}

  issue(path: readonly PathSegment[], message: string): void {
    this.issues.push({ path: formatPath(path), message });
  }

  /** A message in its object form (not a well-known type with a special mapping). */
  message(desc: DescMessage, obj: Record<string, unknown>, path: PathSegment[], depth: number): void {
    if (depth > MAX_DEPTH) return this.issue(path, `nested more than ${MAX_DEPTH} levels deep`);
    const byName = new Map<string, DescField>();
    for (const f of desc.fields) {
      byName.set(f.jsonName, f);
      byName.set(f.name, f);
    }
    const seen = new Map<DescField, string>();
    const oneofSet = new Map<string, string[]>();
    for (const [key, value] of Object.entries(obj)) {
      const field = byName.get(key);
      const at = [...path, key];
      if (!field) {
        const hint = closest(key, desc.fields.map((f) => f.jsonName));
        const text = `unknown field ${JSON.stringify(key)} in ${desc.typeName}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ""}`;
        if (this.unknownFields === "reject") this.issue(at, text);
        else this.unknown.push({ path: formatPath(at), message: text });
        continue;
      }
      const previous = seen.get(field);
      if (previous !== undefined) {
        this.issue(at, `field ${field.name} is given twice (as ${JSON.stringify(previous)} and ${JSON.stringify(key)})`);
        continue;
      }
      seen.set(field, key);
      if (value === null && !acceptsNull(field)) continue; // null means "default" in proto JSON
      if (field.oneof) oneofSet.set(field.oneof.name, [...(oneofSet.get(field.oneof.name) ?? []), key]);
      this.field(field, value, at, depth);
    }
    for (const [oneof, keys] of oneofSet) {
      if (keys.length > 1) this.issue(path, `${keys.map((k) => JSON.stringify(k)).join(" and ")} are all set, but only one member of oneof ${oneof} may be`);
    }
  }

  private field(field: DescField, value: unknown, path: PathSegment[], depth: number): void {
    switch (field.fieldKind) {
      case "scalar":
        return this.scalar(field.scalar, value, path);
      case "enum":
        return this.enumValue(field.enum, value, path);
      case "message":
        return this.messageValue(field.message, value, path, depth);
      case "list": {
        if (!Array.isArray(value)) return this.issue(path, `expected a list, got ${describe(value)}`);
        value.forEach((item, i) => {
          const at = [...path, i];
          if (field.listKind === "scalar") this.notNull(item, at) && this.scalar(field.scalar, item, at);
          else if (field.listKind === "enum") this.notNull(item, at) && this.enumValue(field.enum, item, at);
          else if (item !== null || field.message.typeName === "google.protobuf.Value") this.messageValue(field.message, item, at, depth);
          else this.notNull(item, at);
        });
        return;
      }
      case "map": {
        if (!isPlainObject(value)) return this.issue(path, `expected an object (a map), got ${describe(value)}`);
        for (const [key, item] of Object.entries(value)) {
          const at = [...path, key];
          const keyProblem = mapKeyProblem(field.mapKey, key);
          if (keyProblem) this.issue(at, `bad map key: ${keyProblem}`);
          if (field.mapKind === "scalar") this.notNull(item, at) && this.scalar(field.scalar, item, at);
          else if (field.mapKind === "enum") this.notNull(item, at) && this.enumValue(field.enum, item, at);
          else if (item !== null || field.message.typeName === "google.protobuf.Value") this.messageValue(field.message, item, at, depth);
          else this.notNull(item, at);
        }
        return;
      }
    }
  }

  private notNull(value: unknown, path: PathSegment[]): boolean {
    if (value !== null) return true;
    this.issue(path, "null is not allowed here");
    return false;
  }

  private scalar(type: ScalarType, value: unknown, path: PathSegment[]): void {
    const problem = scalarProblem(type, value);
    if (problem) this.issue(path, problem);
  }

  private enumValue(desc: DescEnum, value: unknown, path: PathSegment[]): void {
    if (desc.typeName === "google.protobuf.NullValue" && value === null) return;
    if (typeof value === "string") {
      if (desc.values.some((v) => v.name === value)) return;
      const names = desc.values.map((v) => v.name);
      return this.issue(path, `expected one of ${names.join(", ")}, got ${JSON.stringify(value)}`);
    }
    if (typeof value === "number" && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
      if (desc.open || desc.value[value] !== undefined) return;
      return this.issue(path, `${value} is not a value of enum ${desc.typeName}`);
    }
    this.issue(path, `expected a ${desc.name} name (such as ${JSON.stringify(desc.values[0]?.name)}), got ${describe(value)}`);
  }

  private messageValue(desc: DescMessage, value: unknown, path: PathSegment[], depth: number): void {
    const problem = wellKnownProblem(desc, value);
    if (problem !== undefined) {
      if (problem !== "") this.issue(path, problem);
      return;
    }
    if (!isPlainObject(value)) return this.issue(path, `expected an object (${desc.typeName}), got ${describe(value)}`);
    this.message(desc, value, path, depth + 1);
  }
}

/** Fields where JSON null is a value, not "unset". */
function acceptsNull(field: DescField): boolean {
  return (
    (field.fieldKind === "message" && field.message.typeName === "google.protobuf.Value") ||
    (field.fieldKind === "enum" && field.enum.typeName === "google.protobuf.NullValue")
  );
}

const WRAPPERS: Record<string, ScalarType> = {
  "google.protobuf.DoubleValue": ScalarType.DOUBLE,
  "google.protobuf.FloatValue": ScalarType.FLOAT,
  "google.protobuf.Int64Value": ScalarType.INT64,
  "google.protobuf.UInt64Value": ScalarType.UINT64,
  "google.protobuf.Int32Value": ScalarType.INT32,
  "google.protobuf.UInt32Value": ScalarType.UINT32,
  "google.protobuf.BoolValue": ScalarType.BOOL,
  "google.protobuf.StringValue": ScalarType.STRING,
  "google.protobuf.BytesValue": ScalarType.BYTES,
};

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const MAX_DURATION_SECONDS = 315_576_000_000;

/**
 * For a well-known type with its own JSON form: the problem, or "" when the
 * value is fine. `undefined` for ordinary messages (checked field by field).
 */
function wellKnownProblem(desc: DescMessage, value: unknown): string | undefined {
  const wrapped = WRAPPERS[desc.typeName];
  if (wrapped !== undefined) return scalarProblem(wrapped, value) ?? "";
  switch (desc.typeName) {
    case "google.protobuf.Duration": {
      const m = typeof value === "string" ? DURATION.exec(value) : null;
      if (!m) return `expected a duration such as "1.5s" or "300s", got ${describe(value)}`;
      return Number(m[2]) > MAX_DURATION_SECONDS ? `duration ${value} is out of range (at most ${MAX_DURATION_SECONDS}s)` : "";
    }
    case "google.protobuf.Timestamp": {
      const m = typeof value === "string" ? TIMESTAMP.exec(value) : null;
      if (!m || Number.isNaN(Date.parse(value as string)) || m[1] === "0000") {
        return `expected an RFC 3339 time such as "2026-01-31T12:00:00Z", got ${describe(value)}`;
      }
      return "";
    }
    case "google.protobuf.FieldMask":
      return typeof value === "string" && /^[A-Za-z0-9_.,]*$/.test(value) ? "" : `expected a field mask such as "a.b,c", got ${describe(value)}`;
    case "google.protobuf.Struct":
      return isPlainObject(value) ? "" : `expected an object, got ${describe(value)}`;
    case "google.protobuf.ListValue":
      return Array.isArray(value) ? "" : `expected a list, got ${describe(value)}`;
    case "google.protobuf.Value":
      return "";
    case "google.protobuf.Any":
      return isPlainObject(value) && typeof value["@type"] === "string" ? "" : `expected an object with "@type", got ${describe(value)}`;
    default:
      return undefined;
  }
}

const INT_RANGES: Partial<Record<ScalarType, readonly [bigint, bigint]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};

const FLOAT_MAX = 3.4028234663852886e38;

/** The problem with `value` as a scalar of `type`, or undefined when it is fine. */
export function scalarProblem(type: ScalarType, value: unknown): string | undefined {
  switch (type) {
    case ScalarType.STRING:
      return typeof value === "string" ? undefined : `expected a string, got ${describe(value)}`;
    case ScalarType.BOOL:
      return typeof value === "boolean" ? undefined : `expected true or false, got ${describe(value)}`;
    case ScalarType.BYTES:
      return typeof value === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value) ? undefined : `expected base64 bytes, got ${describe(value)}`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      if (value === "NaN" || value === "Infinity" || value === "-Infinity") return undefined;
      const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
      if (!Number.isFinite(n)) return `expected a number, got ${describe(value)}`;
      return type === ScalarType.FLOAT && Math.abs(n) > FLOAT_MAX ? `${n} is out of range for a float` : undefined;
    }
    default: {
      const [min, max] = INT_RANGES[type] ?? [0n, 0n];
      let n: bigint | undefined;
      if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
      else if (typeof value === "string" && /^-?\d+$/.test(value)) n = BigInt(value);
      if (n === undefined) return `expected an integer, got ${describe(value)}`;
      return n < min || n > max ? `${value} is out of range (${min} to ${max})` : undefined;
    }
  }
}

function mapKeyProblem(type: ScalarType, key: string): string | undefined {
  if (type === ScalarType.STRING) return undefined;
  if (type === ScalarType.BOOL) return key === "true" || key === "false" ? undefined : `expected "true" or "false", got ${JSON.stringify(key)}`;
  return scalarProblem(type, key);
}

/** A short description of a JSON value for messages: `"ten"`, `42`, `a list`, `an object`. */
export function describe(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (isPlainObject(value)) return "an object";
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The candidate closest to `word` by edit distance, when close enough to be a likely typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
