import type { IncomingMessage, ServerResponse } from "node:http";
import { Metadata } from "@grpc/grpc-js";
import { RpcError, Status } from "../runtime/errors";

/**
 * HTTP headers ↔ gRPC metadata. Only headers on the route's allow-list (and
 * the few the gateway always passes: traceparent, tracestate, the request id)
 * reach the upstream, so a client cannot smuggle internal metadata such as
 * `x-user-id` that the gateway itself derives from a token.
 */

/** Headers that never become metadata: hop-by-hop, HTTP/2 pseudo, or gRPC's own. */
const NEVER = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host", "content-length", "content-type", "accept-encoding", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "user-agent"]);

const ALWAYS = ["traceparent", "tracestate"];

export interface MetadataInput {
  /** Lower-case header names to forward (per route). */
  readonly allow: readonly string[];
  readonly requestId: string;
  /** Client address as seen by the gateway (the socket peer). */
  readonly remoteAddress: string | undefined;
  /** Whether the connection is TLS. */
  readonly secure: boolean;
}

/** The metadata for the upstream call. */
export function requestMetadata(req: IncomingMessage, input: MetadataInput): Metadata {
  const md = new Metadata();
  for (const name of ALWAYS) forward(req, md, name);
  for (const name of input.allow) forward(req, md, name);
  md.set("x-request-id", input.requestId);
  // The client's own chain (when it sent one), then the socket peer.
  const prior = req.headers["x-forwarded-for"];
  const peer = input.remoteAddress;
  const chain = typeof prior === "string" && prior !== "" ? (peer ? `${prior}, ${peer}` : prior) : peer;
  if (chain) md.set("x-forwarded-for", chain);
  if (req.headers.host) md.set("x-forwarded-host", req.headers.host);
  md.set("x-forwarded-proto", input.secure ? "https" : "http");
  return md;
}

function forward(req: IncomingMessage, md: Metadata, name: string): void {
  if (NEVER.has(name) || name.startsWith(":") || name.endsWith("-bin")) return;
  const value = req.headers[name];
  if (value === undefined) return;
  if (typeof value === "string") md.add(name, value);
  else for (const v of value) md.add(name, v);
}

/**
 * A cookie value (the text after `name=`, trimmed) without the one pair of surrounding double
 * quotes RFC 6265 allows (`name="value"`), with its percent-escapes decoded; undefined when they
 * are malformed (or not UTF-8).
 */
export function cookieValue(raw: string): string | undefined {
  if (raw.length >= 2 && raw.charCodeAt(0) === 34 && raw.charCodeAt(raw.length - 1) === 34) raw = raw.slice(1, -1);
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The timeout the client asked for, in ms: `grpc-timeout` (gRPC's `100m`
 * form) or `X-Request-Timeout` (`250ms`, `1.5s`, or bare milliseconds).
 * Undefined when it sent neither; INVALID_ARGUMENT when one is malformed.
 */
export function requestedTimeoutMs(req: IncomingMessage): number | undefined {
  const grpc = req.headers["grpc-timeout"];
  if (typeof grpc === "string") {
    const m = GRPC_TIMEOUT.exec(grpc.trim());
    if (!m) throw new RpcError(Status.INVALID_ARGUMENT, `grpc-timeout ${JSON.stringify(grpc)} is not <digits><H|M|S|m|u|n>`);
    return Number(m[1]) * UNIT_MS[m[2]];
  }
  const header = req.headers["x-request-timeout"];
  if (typeof header === "string") {
    const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(header.trim());
    if (!m) throw new RpcError(Status.INVALID_ARGUMENT, `X-Request-Timeout ${JSON.stringify(header)} is not a duration such as 250ms or 1.5s`);
    return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  }
  return undefined;
}

/**
 * The value a response metadata entry is passed on with, or undefined when it is not passed on.
 * Only the upstream's own text metadata is: not binary (`-bin`) values, not values that are no
 * header text, and not the HTTP/2 transport headers grpc-js hands over as metadata too
 * (`content-type`, `date`, `grpc-accept-encoding`, `grpc-encoding`…; names starting with
 * `grpc-` are reserved by the gRPC protocol), none of which is the upstream's to say to an HTTP
 * caller.
 */
function forwardedValue(key: string, value: unknown): string | undefined {
  if (typeof value !== "string" || key.startsWith("grpc-") || key === "content-type" || key === "date" || key.endsWith("-bin")) return undefined;
  return NOT_HEADER_TEXT.test(value) ? undefined : value;
}

/** Response metadata → headers, each under `prefix` (see {@link forwardedValue} for what is left out). */
export function metadataToHeaders(md: Metadata, res: ServerResponse, prefix: string): string[] {
  const set: string[] = [];
  const map = md.getMap();
  for (const key in map) {
    const value = forwardedValue(key, map[key]);
    if (value === undefined) continue;
    const name = headerName(prefix, key);
    res.setHeader(name, value);
    set.push(name);
  }
  return set;
}

/** The same headers as {@link metadataToHeaders}, written into a header object for `writeHead`. */
export function metadataInto(md: Metadata, head: Record<string, string | number>, prefix: string): void {
  const map = md.getMap();
  for (const key in map) {
    const value = forwardedValue(key, map[key]);
    if (value !== undefined) head[headerName(prefix, key)] = value;
  }
}

const NOT_HEADER_TEXT = /[^\t\x20-\x7e]/;

// Prefixed header names, made once per metadata key (bounded: keys come from upstreams).
const names = new Map<string, Map<string, string>>();
const MAX_NAMES = 512;

function headerName(prefix: string, key: string): string {
  let byKey = names.get(prefix);
  if (!byKey) names.set(prefix, (byKey = new Map()));
  let name = byKey.get(key);
  if (name === undefined) {
    name = `${prefix}${key}`;
    if (byKey.size < MAX_NAMES) byKey.set(key, name);
  }
  return name;
}
