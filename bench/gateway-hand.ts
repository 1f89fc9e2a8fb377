/**
 * What a user would write instead of the gateway, for the gateway benchmarks: a `node:http`
 * handler that parses the JSON body, calls the greeter through a grpc-js client with the
 * ts-proto codec, and writes the answer as JSON. None of the gateway's generality.
 *
 * `forward: true` adds the per-request work a front must do to be a correct proxy, which the
 * gateway does on every request: a request id (the client's `x-request-id`, or a new UUID),
 * returned as a response header and sent upstream with `x-forwarded-for`, `x-forwarded-host`
 * and `x-forwarded-proto`. It separates what that forwarding costs (on both sides of the
 * upstream call) from what the gateway's generality costs.
 */
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { HelloReply, HelloRequest } from "../gen/examples/gateway/v1/greeter_http";

export interface HandWrittenOptions {
  /** Forward a request id and `x-forwarded-*` as metadata, as the gateway does. */
  readonly forward?: boolean;
}

export function handWrittenServer(client: grpc.Client, options: HandWrittenOptions = {}): http.Server {
  const path_ = HttpGreeterDefinition.methods.sayHello.path;
  const forward = options.forward === true;
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let name: string;
      try {
        name = String((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { name?: unknown }).name ?? "");
      } catch {
        res.writeHead(400).end();
        return;
      }
      const md = new grpc.Metadata();
      let requestId: string | undefined;
      if (forward) {
        const incoming = req.headers["x-request-id"];
        requestId = typeof incoming === "string" ? incoming : randomUUID();
        md.set("x-request-id", requestId);
        if (req.socket.remoteAddress) md.set("x-forwarded-for", req.socket.remoteAddress);
        if (req.headers.host) md.set("x-forwarded-host", req.headers.host);
        md.set("x-forwarded-proto", "http");
      }
      client.makeUnaryRequest(
        path_,
        (r: HelloRequest) => Buffer.from(HelloRequest.encode(r).finish()),
        (b: Buffer) => HelloReply.decode(b),
        { name },
        md,
        { deadline: Date.now() + 30_000 },
        (err, reply) => {
          if (err || !reply) {
            res.writeHead(502).end();
            return;
          }
          const body = JSON.stringify(HelloReply.toJSON(reply));
          const head: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
          if (requestId !== undefined) head["x-request-id"] = requestId;
          res.writeHead(200, head).end(body);
        },
      );
    });
  });
}
