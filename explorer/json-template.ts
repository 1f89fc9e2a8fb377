import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";

/**
 * A JSON request to start from: every field of `desc` with its default value
 * (only the first member of a oneof, since setting two is an error), in the
 * canonical proto3 JSON spelling, ready to be sent as is.
 */
export function jsonTemplate(desc: DescMessage): JsonValue {
  return messageTemplate(desc, []);
}

const MAX_DEPTH = 4;

/** Well-known types have their own JSON forms. */
const WELL_KNOWN: Record<string, JsonValue> = {
  "google.protobuf.Timestamp": "1970-01-01T00:00:00Z",
  "google.protobuf.Duration": "0s",
  "google.protobuf.FieldMask": "",
  "google.protobuf.Struct": {},
  "google.protobuf.Value": null,
  "google.protobuf.ListValue": [],
  "google.protobuf.Empty": {},
  "google.protobuf.Any": {},
  "google.protobuf.DoubleValue": 0,
  "google.protobuf.FloatValue": 0,
  "google.protobuf.Int64Value": "0",
  "google.protobuf.UInt64Value": "0",
  "google.protobuf.Int32Value": 0,
  "google.protobuf.UInt32Value": 0,
  "google.protobuf.BoolValue": false,
  "google.protobuf.StringValue": "",
  "google.protobuf.BytesValue": "",
};

function messageTemplate(desc: DescMessage, path: readonly string[]): JsonValue {
  if (Object.hasOwn(WELL_KNOWN, desc.typeName)) return WELL_KNOWN[desc.typeName]!;
  // A message that contains itself (a tree node) is shown once, not unrolled.
  if (path.includes(desc.typeName) || path.length >= MAX_DEPTH) return {};
  const inner = [...path, desc.typeName];
  const out: JsonObject = {};
  const oneofsSeen = new Set<string>();
  for (const field of desc.fields) {
    if (field.oneof) {
      if (oneofsSeen.has(field.oneof.name)) continue;
      oneofsSeen.add(field.oneof.name);
    }
    out[field.jsonName] = fieldTemplate(field, inner);
  }
  return out;
}

function fieldTemplate(field: DescField, path: readonly string[]): JsonValue {
  switch (field.fieldKind) {
    case "scalar":
      return scalarTemplate(field.scalar);
    case "enum":
      return field.enum.typeName === "google.protobuf.NullValue" ? null : (field.enum.values[0]?.name ?? 0);
    case "message":
      return messageTemplate(field.message, path);
    case "list":
      return [];
    case "map":
      return {};
  }
}

function scalarTemplate(type: ScalarType): JsonValue {
  switch (type) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return "0";
    default:
      return 0;
  }
}
