import type { JsonValue } from "@bufbuild/protobuf";
import type { GatewayRoute } from "./routes";

/**
 * The `response_body` field of `message` (its default when absent), or the whole message.
 * `useProtoNames`: the message was written with proto field names (the route's policy), so the
 * field is under its proto name rather than its JSON name.
 */
export function pickResponseBody(route: GatewayRoute, message: JsonValue, useProtoNames = false): JsonValue {
  const f = route.responseBody;
  if (!f || typeof message !== "object" || message === null || Array.isArray(message)) return message;
  const v = (message as Record<string, JsonValue>)[useProtoNames ? f.name : f.jsonName];
  if (v !== undefined) return v;
  if (f.fieldKind === "list") return [];
  if (f.fieldKind === "map" || f.fieldKind === "message") return f.fieldKind === "message" && f.message.typeName.startsWith("google.protobuf.") && f.message.typeName.endsWith("Value") ? null : {};
  if (f.fieldKind === "enum") return f.enum.values[0]?.name ?? 0;
  // Scalars: 64-bit integers are strings in proto3 JSON, other numbers numbers.
  const s = f.scalar as number;
  if (s === 9) return "";
  if (s === 12) return "";
  if (s === 8) return false;
  return [3, 4, 6, 16, 18].includes(s) ? "0" : 0;
}
