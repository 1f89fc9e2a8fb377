import type { DescField, DescMessage, JsonValue } from "@bufbuild/protobuf";

/**
 * Query parameters → proto3 JSON fields of the request message. Names are
 * dotted paths (`nested.label`), each part a proto name or a json_name; a
 * repeated field takes repeated keys; a map takes `attrs[key]=value`. Values
 * are turned into the JSON form of the leaf (numbers stay strings, which
 * proto3 JSON accepts for every numeric type; booleans and enum numbers are
 * converted), so the conformant JSON parser does the rest of the checking.
 */

/** A parameter that cannot be used; the message names it. */
export class QueryError extends Error {
  override readonly name = "QueryError";
}

export type UnknownParams = "ignore" | "reject";

export interface QueryOptions {
  /** Field names (top-level proto names) that path or body already bind: parameters for them are refused. */
  readonly bound?: ReadonlySet<string>;
  /** What to do with a parameter that names no field (default "ignore"). */
  readonly unknown?: UnknownParams;
  /** Parameter names the gateway itself consumes (such as an API key), skipped silently. */
  readonly reserved?: ReadonlySet<string>;
}

/** Splits `a=1&b=x+y` into decoded pairs (`+` is a space); a malformed escape is a {@link QueryError}. */
export function parseQueryString(query: string): [string, string][] {
  const out: [string, string][] = [];
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? "" : part.slice(eq + 1);
    out.push([decodeComponent(rawKey), decodeComponent(rawValue)]);
  }
  return out;
}

function decodeComponent(raw: string): string {
  const text = raw.replace(/\+/g, " ");
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new QueryError(`malformed percent-escape in query parameter ${JSON.stringify(raw)}`);
  }
}

/** Applies `pairs` onto `target` (a JSON object for `desc`), returning the names of ignored parameters. */
export function applyQuery(desc: DescMessage, pairs: readonly [string, string][], target: Record<string, JsonValue>, options: QueryOptions = {}): string[] {
  const ignored: string[] = [];
  for (const [key, value] of pairs) {
    if (options.reserved?.has(key)) continue;
    const resolved = resolveParam(desc, key);
    if (!resolved) {
      if (options.unknown === "reject") throw new QueryError(`unknown query parameter ${JSON.stringify(key)}: ${desc.typeName} has no such field`);
      ignored.push(key);
      continue;
    }
    const top = resolved.chain[0].name;
    if (options.bound?.has(top)) throw new QueryError(`query parameter ${JSON.stringify(key)} sets ${top}, which the path or body already binds`);
    setFieldValue(target, resolved.chain, resolved.mapKey, value, key);
  }
  return ignored;
}

interface Resolved {
  readonly chain: readonly DescField[];
  readonly mapKey: string | undefined;
}

/** `a.b[k]` → the fields from `desc` to the leaf, and the map key when the leaf is a map. */
export function resolveParam(desc: DescMessage, key: string): Resolved | undefined {
  const m = /^([^[\]]+)(?:\[([^[\]]*)\])?$/.exec(key);
  if (!m) return undefined;
  const parts = m[1].split(".");
  const chain: DescField[] = [];
  let msg: DescMessage | undefined = desc;
  for (const part of parts) {
    if (!msg) return undefined;
    const f: DescField | undefined = msg.fields.find((x) => x.name === part || x.jsonName === part);
    if (!f) return undefined;
    chain.push(f);
    msg = f.fieldKind === "message" && !QUERY_WKT.has(f.message.typeName) ? f.message : undefined;
  }
  const leaf = chain[chain.length - 1];
  if (m[2] !== undefined && leaf.fieldKind !== "map") return undefined;
  return { chain, mapKey: m[2] };
}

/** Sets the field at the end of `chain` in `target` from its text form (a query value or path segment). */
export function setFieldValue(target: Record<string, JsonValue>, chain: readonly DescField[], mapKey: string | undefined, raw: string, key: string): void {
  let obj = target;
  for (let i = 0; i < chain.length - 1; i++) {
    const name = chain[i].jsonName;
    const next = obj[name];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      obj = next as Record<string, JsonValue>;
    } else {
      const fresh: Record<string, JsonValue> = {};
      obj[name] = fresh;
      obj = fresh;
    }
  }
  const leaf = chain[chain.length - 1];
  switch (leaf.fieldKind) {
    case "scalar":
      obj[leaf.jsonName] = scalarJson(leaf.scalar, raw, key);
      return;
    case "enum":
      obj[leaf.jsonName] = enumJson(raw);
      return;
    case "message":
      if (!QUERY_WKT.has(leaf.message.typeName)) throw new QueryError(`query parameter ${JSON.stringify(key)} names a message; name one of its fields (${key}.<field>)`);
      obj[leaf.jsonName] = wktJson(leaf.message.typeName, raw, key);
      return;
    case "list": {
      let value: JsonValue;
      if (leaf.listKind === "scalar") value = scalarJson(leaf.scalar, raw, key);
      else if (leaf.listKind === "enum") value = enumJson(raw);
      else if (QUERY_WKT.has(leaf.message.typeName)) value = wktJson(leaf.message.typeName, raw, key);
      else throw new QueryError(`query parameter ${JSON.stringify(key)} is a repeated message: send it in a body`);
      const list = obj[leaf.jsonName];
      if (Array.isArray(list)) list.push(value);
      else obj[leaf.jsonName] = [value];
      return;
    }
    case "map": {
      if (mapKey === undefined) throw new QueryError(`query parameter ${JSON.stringify(key)} is a map: use ${key}[key]=value`);
      let value: JsonValue;
      if (leaf.mapKind === "scalar") value = scalarJson(leaf.scalar, raw, key);
      else if (leaf.mapKind === "enum") value = enumJson(raw);
      else throw new QueryError(`query parameter ${JSON.stringify(key)} is a map of messages: send it in a body`);
      let map = obj[leaf.jsonName];
      if (typeof map !== "object" || map === null || Array.isArray(map)) obj[leaf.jsonName] = map = {};
      // Defined, not assigned: a key such as `__proto__` is an entry like any other, not the prototype's setter.
      Object.defineProperty(map, mapKey, { value, enumerable: true, writable: true, configurable: true });
      return;
    }
  }
}

// ScalarType numbers from descriptor.proto: 8 = bool.
const BOOL = 8;
const STRING_LIKE = new Set([9, 12]); // string, bytes

function scalarJson(scalar: number, raw: string, key: string): JsonValue {
  if (STRING_LIKE.has(scalar)) return raw;
  if (scalar === BOOL) return boolJson(raw, key);
  // Numbers go to the JSON parser as strings: proto3 JSON accepts "12", "1e3", "NaN"
  // and rejects what does not fit the type, with the field named.
  if (raw.trim() === "") throw new QueryError(`query parameter ${JSON.stringify(key)} is empty; a number is expected`);
  return raw;
}

function boolJson(raw: string, key: string): boolean {
  if (raw === "true" || raw === "1" || raw === "") return true;
  if (raw === "false" || raw === "0") return false;
  throw new QueryError(`query parameter ${JSON.stringify(key)}: ${JSON.stringify(raw)} is not a boolean (true, false, 1 or 0)`);
}

function enumJson(raw: string): JsonValue {
  return /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

// Well-known types a single query value can hold: their proto3 JSON form is one primitive.
const QUERY_WKT = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

function wktJson(typeName: string, raw: string, key: string): JsonValue {
  if (typeName === "google.protobuf.BoolValue") return boolJson(raw, key);
  return raw;
}
