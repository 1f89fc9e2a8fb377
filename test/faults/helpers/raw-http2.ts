/**
 * Hand-made gRPC requests over plain HTTP/2, for bytes and headers that no
 * well-behaved client would send.
 */
import * as http2 from "node:http2";

export interface RawResult {
  /** HTTP status of the response headers. */
  http?: number;
  /** `grpc-status` from the trailers (or trailers-only headers). */
  grpcStatus?: number;
  grpcMessage?: string;
  /** The HTTP/2 stream was reset (code), or the session failed, instead of a gRPC status. */
  reset?: number;
}

/** A gRPC message frame: compressed flag, 4-byte length (which may lie), body. */
export function grpcFrame(body: Buffer, options: { declaredLength?: number; flag?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head[0] = options.flag ?? 0;
  head.writeUInt32BE(options.declaredLength ?? body.length, 1);
  return Buffer.concat([head, body]);
}

/** Sends one request on a fresh HTTP/2 session and reports how the server answered. */
export function rawGrpcRequest(address: string, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}, timeoutMs = 3000): Promise<RawResult> {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => undefined);
  return new Promise((resolve) => {
    const result: RawResult = {};
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) result.grpcStatus = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) result.grpcMessage = decodeURIComponent(String(h["grpc-message"]));
    };
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const timer = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    req.on("response", (h) => {
      result.http = Number(h[":status"]);
      read(h);
    });
    req.on("trailers", read);
    req.on("data", () => undefined);
    req.on("error", () => undefined);
    req.on("close", () => {
      clearTimeout(timer);
      if (result.grpcStatus === undefined && result.http === undefined) result.reset = req.rstCode;
      session.close();
      resolve(result);
    });
    req.end(body);
  });
}
