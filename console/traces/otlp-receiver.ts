/**
 * The embedded OTLP/HTTP trace receiver, `POST /v1/traces`: protobuf bodies
 * (`application/x-protobuf`, what OpenTelemetry exporters and the Collector send
 * by default) and JSON bodies (`application/json`, what protomesh's tracing
 * sends), plain or gzip-compressed. It answers in the request's encoding, as
 * OTLP/HTTP asks: an `ExportTraceServiceResponse` (with `partial_success` when
 * malformed spans were skipped), or on failure a `google.rpc.Status` for a
 * protobuf request and the console's `{"error": …}` for a JSON one.
 */
import type * as http from "node:http";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { HttpError } from "../server/http-error";
import { readBody, SECURITY_HEADERS, sendJson } from "../server/http-io";
import type { Route } from "../server/route";
import { decodeOtlpJson } from "./otlp-json";
import { decodeOtlpProtobuf, encodeOtlpResponse, encodeRpcStatus } from "./otlp-protobuf";
import type { TraceSpan } from "./span";
import type { TraceStore } from "./trace-store";

export const OTLP_PATH = "/v1/traces";
/** Largest export accepted, compressed and after decompression alike. */
export const MAX_OTLP_BYTES = 8 << 20;

const PROTOBUF_TYPES = new Set(["application/x-protobuf", "application/protobuf"]);
const ACCEPTED = "application/x-protobuf or application/json";
const gunzip = promisify(zlib.gunzip);

/** The receiver's route; `store` undefined means the receiver is off (404). */
export function otlpReceiverRoute(store: TraceStore | undefined): Route {
  return {
    method: "POST",
    path: OTLP_PATH,
    role: "viewer",
    stream: true,
    handler: async ({ req, res }) => {
      if (!store) throw new HttpError(404, "the embedded trace receiver is off");
      const type = mediaType(req.headers["content-type"]);
      const protobuf = PROTOBUF_TYPES.has(type);
      if (!protobuf && type !== "application/json") {
        throw new HttpError(415, `this receiver takes OTLP/HTTP trace exports as ${ACCEPTED}${type ? `, not ${type}` : " (the request has no Content-Type)"}`);
      }
      try {
        const body = await inflate(req, await readBody(req, MAX_OTLP_BYTES));
        const decoded = protobuf ? decodeProtobuf(body) : decodeJson(body);
        store.add(decoded.spans);
        const message = decoded.rejected > 0 ? `${decoded.rejected} malformed span(s) skipped (ids must be 16 and 8 bytes, times set)` : "";
        if (protobuf) sendProtobuf(res, 200, encodeOtlpResponse(decoded.rejected, message));
        else sendJson(res, 200, decoded.rejected > 0 ? { partialSuccess: { rejectedSpans: String(decoded.rejected), errorMessage: message } } : {});
      } catch (err) {
        if (!protobuf || !(err instanceof HttpError)) throw err;
        sendProtobuf(res, err.status, encodeRpcStatus(err.status === 413 ? RESOURCE_EXHAUSTED : INVALID_ARGUMENT, err.message));
      }
    },
  };
}

// google.rpc.Code values for the Status body of a failed protobuf request.
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

function decodeProtobuf(body: Buffer): { spans: TraceSpan[]; rejected: number } {
  try {
    return decodeOtlpProtobuf(body);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

function decodeJson(body: Buffer): { spans: TraceSpan[]; rejected: number } {
  try {
    return decodeOtlpJson(JSON.parse(body.toString("utf8")));
  } catch (err) {
    throw new HttpError(400, `not an OTLP JSON trace export: ${(err as Error).message}`);
  }
}

/** The body as sent, or gunzipped (OTLP/HTTP servers should take gzip; the Collector's exporter sends it by default). */
async function inflate(req: http.IncomingMessage, body: Buffer): Promise<Buffer> {
  const encoding = (req.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return body;
  if (encoding !== "gzip") throw new HttpError(415, `Content-Encoding ${JSON.stringify(encoding)} is not supported: send gzip or no encoding`);
  try {
    return await gunzip(body, { maxOutputLength: MAX_OTLP_BYTES });
  } catch (err) {
    // A small body that inflates past the limit is refused like a large one.
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw new HttpError(413, `request body over ${MAX_OTLP_BYTES} bytes once decompressed`);
    throw new HttpError(400, `the gzip body does not decompress: ${(err as Error).message}`);
  }
}

function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

function sendProtobuf(res: http.ServerResponse, status: number, body: Uint8Array): void {
  res.writeHead(status, { "content-type": "application/x-protobuf", "content-length": String(body.length), "cache-control": "no-store", ...SECURITY_HEADERS });
  res.end(body);
}
