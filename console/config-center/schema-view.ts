/**
 * A config schema as the Config page shows it: one row per field (nested
 * messages flattened to dotted JSON paths), with its proto type and comment,
 * so values are read against what they mean.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { commentsOf, fieldLabel, fieldTypeName } from "../../runtime/descriptor-info";

export interface SchemaField {
  /** JSON path (`limits.maxNameLength`). */
  readonly path: string;
  /** `repeated string`, `map<string, int32>`, `examples.Foo`. */
  readonly type: string;
  readonly comment: string;
  /** A message field whose own fields follow. */
  readonly group: boolean;
}

const MAX_DEPTH = 4;

export function schemaFields(desc: DescMessage): SchemaField[] {
  const out: SchemaField[] = [];
  const walk = (msg: DescMessage, prefix: string, depth: number, seen: Set<string>) => {
    for (const field of msg.fields) {
      const path = prefix ? `${prefix}.${field.jsonName}` : field.jsonName;
      const label = fieldLabel(field);
      const type = `${label ? `${label} ` : ""}${fieldTypeName(field)}`;
      const nested = field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.") ? field.message : undefined;
      out.push({ path, type, comment: commentsOf(field).leading.trim(), group: nested !== undefined });
      if (nested && depth < MAX_DEPTH && !seen.has(nested.typeName)) walk(nested, path, depth + 1, new Set([...seen, nested.typeName]));
    }
  };
  walk(desc, "", 0, new Set([desc.typeName]));
  return out;
}
