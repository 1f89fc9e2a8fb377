/**
 * "Try it" over HTTP through the gateway: the JSON request of a gRPC method is
 * turned into the HTTP request its `google.api.http` route describes (path
 * variables from the request's fields, the body as the rule says, the other
 * fields as query parameters) and sent to the gateway the console was given
 * (`--gateway URL`), never to any other host. The answer comes back in the
 * gRPC try-it's shape, with the HTTP status and the request line beside it.
 */
import type { DescMessage, JsonValue } from "@bufbuild/protobuf";
import type { BoundRoute } from "../../gateway/route-table";
import { codeName, Status } from "../../runtime/errors";

export interface HttpRequestLine {
  readonly method: string;
  /** Path and query, percent-encoded. */
  readonly path: string;
  readonly body: string | undefined;
}

export type HttpCallResult =
  | { ok: true; responses: JsonValue[]; http: { status: number; request: string } }
  | { ok: false; code: number; codeName: string; message: string; details?: unknown; http?: { status: number; request: string } };

const MAX_ANSWER_BYTES = 4 << 20;
const isObject = (v: unknown): v is Record<string, JsonValue> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The route's request for `message` (proto3 JSON); throws an Error naming a missing path field. */
export function httpRequestFor(route: BoundRoute, message: JsonValue): HttpRequestLine {
  if (!isObject(message)) throw new Error(`the request must be a JSON object (${route.method.input.typeName})`);
  const rest = structuredClone(message) as Record<string, JsonValue>;
  const path = route.template.source.replace(/\{([^}=]+)(=([^}]*))?\}/g, (_all, name: string, _eq: string | undefined, pattern: string | undefined) => {
    const chain = route.pathFields.get(name.trim());
    if (!chain) throw new Error(`the route ${route.template.source} names ${name}, which the request has no field for`);
    let obj: Record<string, JsonValue> | undefined = rest;
    for (let i = 0; i < chain.length - 1 && obj; i++) {
      const next: JsonValue | undefined = obj[chain[i]!.jsonName] ?? obj[chain[i]!.name];
      obj = isObject(next) ? next : undefined;
    }
    const leaf = chain[chain.length - 1]!;
    const value = obj ? (obj[leaf.jsonName] ?? obj[leaf.name]) : undefined;
    if (value === undefined || value === null || value === "" || isObject(value) || Array.isArray(value)) {
      throw new Error(`the path ${route.template.source} needs ${name}: give it a value in the request`);
    }
    if (obj) {
      delete obj[leaf.jsonName];
      delete obj[leaf.name];
    }
    // A multi-segment variable (`{name=shelves/*}` or `**`) keeps its slashes.
    const multi = pattern !== undefined && (pattern.includes("/") || pattern.includes("**"));
    return multi ? String(value).split("/").map(encodeURIComponent).join("/") : encodeURIComponent(String(value));
  });
  let body: JsonValue | undefined;
  if (route.body === "*") {
    body = rest;
  } else if (route.bodyField) {
    body = rest[route.bodyField.jsonName] ?? rest[route.bodyField.name];
    delete rest[route.bodyField.jsonName];
    delete rest[route.bodyField.name];
  }
  const query = route.body === "*" ? [] : queryPairs(rest, "", route.method.input);
  const qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
  return { method: route.httpMethod.toUpperCase(), path: qs ? `${path}?${qs}` : path, body: body === undefined ? undefined : JSON.stringify(body) };
}

/**
 * Proto3 JSON fields as query parameters, in the gateway's query syntax:
 * dotted names for nested messages, repeated keys for lists, `name[key]` for
 * map entries.
 */
function queryPairs(value: Record<string, JsonValue>, prefix: string, desc: DescMessage | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(value)) {
    const field = desc?.fields.find((f) => f.jsonName === k || f.name === k);
    const name = prefix ? `${prefix}.${k}` : k;
    if (v === null) continue;
    if (field?.fieldKind === "map" && isObject(v)) for (const [key, item] of Object.entries(v)) out.push([`${name}[${key}]`, scalar(item)]);
    else if (Array.isArray(v)) for (const item of v) out.push([name, scalar(item)]);
    else if (isObject(v) && (field === undefined || field.fieldKind === "message")) out.push(...queryPairs(v, name, field?.message));
    else out.push([name, scalar(v)]);
  }
  return out;
}

const scalar = (v: JsonValue): string => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));

/** Sends the route's request for `message` to the gateway at `gatewayUrl`. */
export async function callThroughGateway(gatewayUrl: string, route: BoundRoute, request: JsonValue, options: { headers?: Record<string, string>; deadlineMs: number }): Promise<HttpCallResult> {
  let line: HttpRequestLine;
  try {
    line = httpRequestFor(route, request);
  } catch (err) {
    return { ok: false, code: Status.INVALID_ARGUMENT, codeName: codeName(Status.INVALID_ARGUMENT), message: (err as Error).message };
  }
  const requestLine = `${line.method} ${line.path}`;
  let res: Response;
  try {
    res = await fetch(`${gatewayUrl}${line.path}`, {
      method: line.method,
      headers: { ...options.headers, accept: "application/json", ...(line.body !== undefined ? { "content-type": "application/json" } : {}) },
      body: line.body,
      redirect: "manual",
      signal: AbortSignal.timeout(options.deadlineMs),
    });
  } catch (err) {
    const e = err as Error;
    // fetch says "fetch failed" for the network (the cause tells why); any other TypeError is the request itself (a bad header name).
    if (e.name === "TypeError" && e.message !== "fetch failed") return { ok: false, code: Status.INVALID_ARGUMENT, codeName: codeName(Status.INVALID_ARGUMENT), message: `cannot send this request: ${e.message}` };
    const timedOut = e.name === "TimeoutError";
    const code = timedOut ? Status.DEADLINE_EXCEEDED : Status.UNAVAILABLE;
    return { ok: false, code, codeName: codeName(code), message: timedOut ? `the gateway at ${gatewayUrl} did not answer within ${options.deadlineMs} ms` : `cannot reach the gateway at ${gatewayUrl}: ${String((e.cause as Error | undefined)?.message ?? e.message)}`, http: { status: 0, request: requestLine } };
  }
  const text = (await res.text()).slice(0, MAX_ANSWER_BYTES);
  const http = { status: res.status, request: requestLine };
  const values = parseAnswer(text, res.headers.get("content-type") ?? "");
  if (res.ok && values) return { ok: true, responses: values, http };
  const status = values?.length === 1 && isObject(values[0]) ? values[0] : undefined;
  const code = typeof status?.code === "number" ? status.code : Status.UNKNOWN;
  const message = typeof status?.message === "string" ? status.message : text.slice(0, 500) || `HTTP ${res.status}`;
  return { ok: false, code, codeName: codeName(code), message: `HTTP ${res.status}: ${message}`, ...(status?.details !== undefined ? { details: status.details } : {}), http };
}

/** One JSON answer, or a stream's frames (newline-delimited `{"result": …}`). */
function parseAnswer(text: string, contentType: string): JsonValue[] | undefined {
  try {
    if (contentType.includes("ndjson")) {
      return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
        const frame = JSON.parse(l) as JsonValue;
        return isObject(frame) && "result" in frame ? frame.result! : frame;
      });
    }
    return text === "" ? [{}] : [JSON.parse(text) as JsonValue];
  } catch {
    return undefined;
  }
}
