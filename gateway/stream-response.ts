import type { IncomingMessage, ServerResponse } from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";
import { RpcError } from "../runtime/errors";
import { httpStatusOfError, statusJson } from "./http-errors";
import { pickResponseBody } from "./response-body";
import type { BoundRoute } from "./route-table";

/**
 * A server stream as newline-delimited JSON (`{"result": …}` per line, like
 * grpc-gateway) or, when the client sends `Accept: text/event-stream`, as
 * Server-Sent Events (`data:` per message, `event: error` at a failure).
 * Each message is flushed as it arrives. Until the first message the status
 * is still open, so an immediate failure is an ordinary error response; after
 * it, the failure is the stream's last frame.
 */
export async function streamResponses(responses: AsyncIterable<JsonValue>, req: IncomingMessage, res: ServerResponse, route: BoundRoute, useProtoNames = false): Promise<number> {
  const sse = String(req.headers.accept ?? "").includes("text/event-stream");
  const frame = sse ? (v: JsonValue) => `data: ${JSON.stringify(v)}\n\n` : (v: JsonValue) => `${JSON.stringify({ result: v })}\n`;
  let started = false;
  const start = () => {
    res.writeHead(200, sse ? { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" } : { "content-type": "application/x-ndjson" });
    res.flushHeaders();
    started = true;
  };
  try {
    for await (const value of responses) {
      if (!started) start();
      const ok = res.write(frame(pickResponseBody(route, value, useProtoNames)));
      if (!ok && !res.destroyed) await new Promise<void>((resolve) => { res.once("drain", resolve); res.once("close", resolve); });
      if (res.destroyed) break;
    }
    if (!started) start();
    res.end();
    return 200;
  } catch (err) {
    if (!started) throw err;
    const e = RpcError.from(err);
    const status = statusJson(e);
    res.end(sse ? `event: error\ndata: ${JSON.stringify(status)}\n\n` : `${JSON.stringify({ error: status })}\n`);
    return httpStatusOfError(e);
  }
}
