import { fromJson, toBinary, type DescMessage, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { RpcError, Status } from "../runtime/errors";
import { applyQuery, QueryError, setFieldValue, type UnknownParams } from "./query";
import type { GatewayRoute } from "./routes";

/**
 * The request message of a route, from the three places HTTP puts it: the
 * body (all of it, one field, or none), the path variables and the query
 * string. Precedence follows `google/api/http.proto`: path variables win over
 * the body; query parameters fill only what neither path nor body binds.
 */

export interface RequestParts {
  readonly variables: ReadonlyMap<string, string>;
  readonly query: readonly [string, string][];
  /** Parsed JSON body, or undefined when there was none. */
  readonly body: JsonValue | undefined;
}

export interface BuildOptions {
  readonly registry: Registry;
  readonly unknownParams?: UnknownParams;
  /** Query parameters consumed by the gateway (an API key name, a JWT parameter). */
  readonly reserved?: ReadonlySet<string>;
}

/** The request as proto3 JSON; throws INVALID_ARGUMENT naming the parameter or field at fault. */
export function requestJson(route: GatewayRoute, parts: RequestParts, options: BuildOptions): Record<string, JsonValue> {
  const desc = route.method.input;
  let target: Record<string, JsonValue>;
  if (route.body === "*") {
    target = objectBody(parts.body, desc, route.pathFields.size > 0);
  } else if (route.bodyField) {
    target = {};
    if (parts.body !== undefined) target[route.bodyField.jsonName] = parts.body;
  } else {
    target = {};
  }
  if (route.body !== "*") {
    const bound = new Set<string>();
    for (const chain of route.pathFields.values()) if (chain.length === 1) bound.add(chain[0].name);
    if (route.bodyField) bound.add(route.bodyField.name);
    try {
      applyQuery(desc, parts.query, target, { bound, unknown: options.unknownParams, reserved: options.reserved });
    } catch (err) {
      if (err instanceof QueryError) throw new RpcError(Status.INVALID_ARGUMENT, err.message);
      throw err;
    }
  } else if (options.unknownParams === "reject") {
    const stray = parts.query.find(([k]) => !options.reserved?.has(k));
    if (stray) throw new RpcError(Status.INVALID_ARGUMENT, `query parameter ${JSON.stringify(stray[0])} not allowed: this route takes the whole request from the body`);
  }
  for (const [name, chain] of route.pathFields) {
    const value = parts.variables.get(name);
    if (value === undefined) continue;
    try {
      // Copy the objects on the way down: the body must not be mutated in place.
      let obj = target;
      for (let i = 0; i < chain.length - 1; i++) {
        const key = chain[i].jsonName;
        const protoKey = chain[i].name;
        const existing = obj[key] ?? obj[protoKey];
        const copy = typeof existing === "object" && existing !== null && !Array.isArray(existing) ? { ...(existing as Record<string, JsonValue>) } : {};
        if (protoKey !== key) delete obj[protoKey];
        obj[key] = copy;
        obj = copy;
      }
      const leaf = chain[chain.length - 1];
      if (leaf.name !== leaf.jsonName) delete obj[leaf.name];
      setFieldValue(obj, [leaf], undefined, value, `{${name}}`);
    } catch (err) {
      if (err instanceof QueryError) throw new RpcError(Status.INVALID_ARGUMENT, err.message.replace("query parameter", "path variable"));
      throw err;
    }
  }
  return target;
}

/** The request as wire bytes: the JSON above, parsed by the conformant proto3 JSON parser. */
export function encodeRequest(desc: DescMessage, json: JsonValue, registry: Registry): Uint8Array {
  try {
    return toBinary(desc, fromJson(desc, json, { registry }));
  } catch (err) {
    throw new RpcError(Status.INVALID_ARGUMENT, `invalid ${desc.typeName}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The body as the request object; a copy only when path variables will be written into it. */
function objectBody(body: JsonValue | undefined, desc: DescMessage, copy: boolean): Record<string, JsonValue> {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RpcError(Status.INVALID_ARGUMENT, `the body must be a JSON object (${desc.typeName}), not ${body === null ? "null" : Array.isArray(body) ? "an array" : typeof body}`);
  }
  return copy ? { ...body } : body;
}
