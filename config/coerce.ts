/**
 * Gives the strings of a `.properties` file the JSON types the schema expects:
 * `true`/`false` for bools, numbers for enums given by number, and
 * comma-separated values for lists of scalars (`blockedNames=a,b`). Numbers
 * stay strings, which proto JSON accepts for every numeric type; anything that
 * does not fit is left for validation to report with its path.
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

export function coerceStrings(desc: DescMessage, value: unknown): unknown {
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    out[key] = field ? coerceField(field, item) : item;
  }
  return out;
}

function coerceField(field: DescField, value: unknown): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return coerceScalar(field.scalar, value);
    case "enum":
      return coerceEnum(value);
    case "message":
      return coerceMessage(field.message, value);
    case "list": {
      const items = typeof value === "string" && field.listKind !== "message" ? splitList(value) : value;
      if (!Array.isArray(items)) return items;
      if (field.listKind === "scalar") return items.map((i) => coerceScalar(field.scalar, i));
      if (field.listKind === "enum") return items.map(coerceEnum);
      return items.map((i) => coerceMessage(field.message, i));
    }
    case "map": {
      if (!isObject(value)) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        out[k] = field.mapKind === "scalar" ? coerceScalar(field.scalar, v) : field.mapKind === "enum" ? coerceEnum(v) : coerceMessage(field.message, v);
      }
      return out;
    }
  }
}

function coerceMessage(desc: DescMessage, value: unknown): unknown {
  if (desc.typeName === "google.protobuf.BoolValue") return coerceScalar(ScalarType.BOOL, value);
  return coerceStrings(desc, value);
}

function coerceScalar(type: ScalarType, value: unknown): unknown {
  if (type === ScalarType.BOOL && typeof value === "string") {
    const lower = value.trim().toLowerCase();
    if (lower === "true" || lower === "false") return lower === "true";
  }
  return value;
}

function coerceEnum(value: unknown): unknown {
  return typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
}

function splitList(value: string): string[] {
  return value.trim() === "" ? [] : value.split(",").map((s) => s.trim());
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
