/** Small helpers for reading and answering HTTP requests. */
import type * as http from "node:http";
import { HttpError } from "./http-error";

export const MAX_JSON_BYTES = 1 << 20;

/** Reads a body of at most `limit` bytes; a larger one is a 413. */
export function readBody(req: http.IncomingMessage, limit = MAX_JSON_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body over ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Parses a JSON body; an empty body is `{}`. */
export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `the request body is not JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value ?? null);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS, ...headers });
  res.end(body);
}

/** Headers every answer carries: no sniffing, no framing by other sites. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "SAMEORIGIN",
  "referrer-policy": "same-origin",
};

/** A JSON object body, or a 400. */
export function objectBody(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HttpError(400, "the request body must be a JSON object");
  return value as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string, options: { optional?: boolean; max?: number } = {}): string {
  const v = body[name];
  if (v === undefined && options.optional) return "";
  if (typeof v !== "string") throw new HttpError(400, `"${name}" must be a string`);
  if (options.max !== undefined && v.length > options.max) throw new HttpError(400, `"${name}" is over ${options.max} characters`);
  return v;
}
