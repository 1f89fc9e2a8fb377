import type { IncomingMessage } from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";
import { Status } from "../runtime/errors";
import { GatewayError } from "./http-errors";

/**
 * Reading a request body: bounded in size (413 as soon as the limit is
 * passed, announced by Content-Length or not) and in time (the server's
 * request timeout covers a client that stops sending). Content types are
 * checked before a byte is read.
 */

export const JSON_TYPES = new Set(["application/json", "application/x-ndjson", "application/jsonl", "text/plain"]);

/** Refuses a content type the route cannot read (415), or answers the media type. */
export function checkContentType(req: IncomingMessage): string | undefined {
  const raw = req.headers["content-type"];
  if (raw === undefined) return undefined;
  const type = raw.split(";")[0].trim().toLowerCase();
  if (type === "" || JSON_TYPES.has(type) || type.endsWith("+json")) return type;
  throw new GatewayError(Status.INVALID_ARGUMENT, `unsupported content type ${JSON.stringify(raw)}: send application/json (or application/x-ndjson for a stream)`, 415);
}

/** Whether the request carries a body at all. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/**
 * Reads the whole body, refusing more than `limit` bytes with 413. Events rather than an
 * async iterator: one promise per body instead of one per chunk. A refused body is left
 * unread (the 413 carries `connection: close`); a request that ends before its body does
 * rejects, like a stream error. The state lives in one object per body, kept on the request;
 * the listeners are four module-level functions (an emitter calls them with the request as
 * `this`) that stay on the request (it is read once, and settling twice does nothing), so a
 * body costs no closures and no listener removal.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    (req as Reading)[READ] = new BodyRead(req, limit, resolve, reject);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    // Every request closes; by then its body has normally been read and this does nothing.
    req.on("close", onClose);
  });
}

const READ = Symbol("protomesh.gateway.bodyRead");

interface Reading extends IncomingMessage {
  [READ]?: BodyRead;
}

function onData(this: Reading, chunk: Buffer): void {
  this[READ]?.data(chunk);
}

function onEnd(this: Reading): void {
  this[READ]?.end();
}

function onError(this: Reading, err: Error): void {
  this[READ]?.fail(this.complete ? err : undefined);
}

function onClose(this: Reading): void {
  this[READ]?.fail(undefined);
}

class BodyRead {
  private first: Buffer | undefined;
  private chunks: Buffer[] | undefined;
  private size = 0;
  private settled = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
    private readonly resolve: (body: Buffer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  data(chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.settled = true;
      this.first = this.chunks = undefined;
      this.req.pause();
      this.reject(tooLarge(this.limit));
      return;
    }
    if (this.first === undefined) this.first = chunk;
    else (this.chunks ??= [this.first]).push(chunk);
  }

  end(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(this.chunks ? Buffer.concat(this.chunks, this.size) : (this.first ?? Buffer.alloc(0)));
  }

  /** Rejects with `err`, or (undefined) with "the client closed the connection", unless settled. */
  fail(err: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err ?? clientGone());
  }
}

function clientGone(): GatewayError {
  return new GatewayError(Status.CANCELLED, "the client closed the connection before the request body ended", 499);
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError(Status.RESOURCE_EXHAUSTED, `request body larger than ${limit} bytes`, 413, { connection: "close" });
}

/** Parses a JSON body; an empty body is undefined. */
export function parseJsonBody(bytes: Buffer): JsonValue | undefined {
  const text = bytes.toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new GatewayError(Status.INVALID_ARGUMENT, `malformed JSON body: ${(err as Error).message}`);
  }
}

/** The messages of a client stream: a JSON array, or one JSON value per line (NDJSON). */
export function parseJsonStream(bytes: Buffer): JsonValue[] {
  const text = bytes.toString("utf8").trim();
  if (text === "") return [];
  if (text.startsWith("[")) {
    const value = parseJsonBody(bytes);
    if (!Array.isArray(value)) throw new GatewayError(Status.INVALID_ARGUMENT, "malformed JSON array body");
    return value;
  }
  return text.split(/\r?\n/).filter((l) => l.trim() !== "").map((line, i) => {
    try {
      return JSON.parse(line) as JsonValue;
    } catch (err) {
      throw new GatewayError(Status.INVALID_ARGUMENT, `malformed JSON on line ${i + 1} of the request stream: ${(err as Error).message}`);
    }
  });
}
