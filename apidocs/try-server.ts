import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { JsonValue } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { dynamicCall } from "../runtime/dynamic-call";
import { codeName, RpcError, Status } from "../runtime/errors";
import { findMethod } from "../explorer/lookup";
import { openTarget, type OpenedTarget } from "../explorer/target";
import type { ProjectDescriptors } from "./descriptor-set";
import { renderHtml } from "./html";
import { renderMarkdown } from "./markdown";
import { buildModel } from "./model";

/**
 * The local HTTP server behind `protomesh docs --serve`: it serves the docs
 * page and, at `POST /api/call`, turns the page's JSON requests into gRPC calls
 * with the project's descriptors, answering with JSON. It listens on loopback
 * by default and accepts calls only from its own page (same-origin JSON
 * requests), so other web pages cannot use it to reach services.
 */

export interface DocsServerOptions {
  readonly descriptors: ProjectDescriptors;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** The target calls go to unless the page names another one. */
  readonly target?: string;
  /** Environment for registry targets (`ETCD_ENDPOINTS`). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface DocsServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const CALL_ENDPOINT = "/api/call";
const MAX_BODY_BYTES = 1 << 20;
const MAX_RESPONSES = 1000;
const DEFAULT_DEADLINE_MS = 30_000;

/** What the page posts. */
interface CallBody {
  target?: string;
  method: string;
  requests?: JsonValue[];
  metadata?: Record<string, string>;
  deadlineMs?: number;
}

/** What the endpoint answers. */
type CallResult =
  | { ok: true; responses: JsonValue[] }
  | { ok: false; code: number; codeName: string; message: string; details?: unknown };

export async function startDocsServer(options: DocsServerOptions): Promise<DocsServer> {
  const model = buildModel(options.descriptors.registry, options.descriptors.projectFiles);
  const page = renderHtml(model, { tryEndpoint: CALL_ENDPOINT, target: options.target });
  const markdown = renderMarkdown(model);
  const channels = new Map<string, OpenedTarget>();
  const env = options.env ?? process.env;
  // Names the page may be reached by; anything else in Host is a rebound DNS name.
  // Bound to a wildcard address, the server is meant to be reached by this machine's IP addresses too.
  const names = new Set(["127.0.0.1", "localhost", "[::1]", options.host ?? "127.0.0.1"]);
  const wildcard = options.host === "0.0.0.0" || options.host === "::";
  const allowedHosts = (name: string) => names.has(name) || (wildcard && /^(\d{1,3}\.){3}\d{1,3}$|^\[[0-9a-f:.]+\]$/i.test(name));

  const channel = (target: string): grpc.Client => {
    let opened = channels.get(target);
    if (!opened) {
      opened = openTarget(target, env);
      channels.set(target, opened);
    }
    return opened.client;
  };

  const call = async (body: CallBody): Promise<CallResult> => {
    const target = (body.target ?? "").trim() || options.target;
    if (!target) throw new RpcError(Status.INVALID_ARGUMENT, "no target: fill in the target (host:port or etcd:///service)");
    const method = findMethod(options.descriptors.registry, body.method);
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(body.metadata ?? {})) metadata.add(key, String(value));
    const deadlineMs = typeof body.deadlineMs === "number" && body.deadlineMs > 0 ? body.deadlineMs : DEFAULT_DEADLINE_MS;
    const responses: JsonValue[] = [];
    const stream = dynamicCall(channel(target), method, body.requests ?? [], {
      metadata,
      deadline: Date.now() + deadlineMs,
      registry: options.descriptors.registry,
    });
    for await (const response of stream) {
      responses.push(response);
      if (responses.length >= MAX_RESPONSES) break;
    }
    return { ok: true, responses };
  };

  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
      res.end(body);
    };
    const sendJson = (status: number, result: CallResult) => send(status, "application/json; charset=utf-8", JSON.stringify(result));
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && (path === "/" || path === "/index.html")) return send(200, "text/html; charset=utf-8", page);
    if (req.method === "GET" && path === "/api.md") return send(200, "text/markdown; charset=utf-8", markdown);
    if (path !== CALL_ENDPOINT) return send(404, "text/plain; charset=utf-8", "not found\n");
    if (req.method !== "POST") return send(405, "text/plain; charset=utf-8", "use POST\n");
    const refusal = refuse(req, allowedHosts);
    if (refusal) return sendJson(403, failure(Status.PERMISSION_DENIED, refusal));
    readBody(req).then(
      (text) => {
        let body: CallBody;
        try {
          body = JSON.parse(text) as CallBody;
          if (typeof body !== "object" || body === null || typeof body.method !== "string") throw new Error("expected {method, requests, target?, metadata?, deadlineMs?}");
          if (body.requests !== undefined && !Array.isArray(body.requests)) throw new Error("requests must be an array");
        } catch (err) {
          return sendJson(400, failure(Status.INVALID_ARGUMENT, `bad request body: ${err instanceof Error ? err.message : String(err)}`));
        }
        call(body).then(
          (result) => sendJson(200, result),
          (err: unknown) => {
            const e = err instanceof RpcError ? err : RpcError.from(err, Status.UNKNOWN);
            sendJson(200, { ...failure(e.code, e.rawMessage), ...(e.details === undefined ? {} : { details: e.details }) });
          },
        );
      },
      (err: Error) => sendJson(413, failure(Status.RESOURCE_EXHAUSTED, err.message)),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all([...channels.values()].map((c) => c.close()));
      channels.clear();
    },
  };
}

/**
 * Why a call request is refused, if it is. Browsers send `Origin` on every
 * cross-origin POST and cannot send `application/json` across origins without a
 * preflight, which this server never approves; checking `Host` keeps a page
 * whose DNS name was rebound to loopback out too.
 */
function refuse(req: http.IncomingMessage, allowedHosts: (name: string) => boolean): string | undefined {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) return "calls must be sent as application/json";
  const hostName = (req.headers.host ?? "").replace(/:\d+$/, "");
  if (!allowedHosts(hostName)) return `host ${JSON.stringify(hostName)} is not accepted; open the page at the address the docs server printed`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${req.headers.host}`) return `calls from ${origin} are not accepted; use the page this server serves`;
  return undefined;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function failure(code: number, message: string): CallResult {
  return { ok: false, code, codeName: codeName(code), message };
}
