/**
 * What a user would write instead of the gateway, for the gateway benchmarks: a `node:http`
 * handler that parses the JSON body, calls the greeter through a grpc-js client with the
 * ts-proto codec, and writes the answer as JSON. None of the gateway's generality.
 */
import * as http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { HelloReply, HelloRequest } from "../gen/examples/gateway/v1/greeter_http";

export function handWrittenServer(client: grpc.Client): http.Server {
  const path_ = HttpGreeterDefinition.methods.sayHello.path;
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
      client.makeUnaryRequest(
        path_,
        (r: HelloRequest) => Buffer.from(HelloRequest.encode(r).finish()),
        (b: Buffer) => HelloReply.decode(b),
        { name },
        new grpc.Metadata(),
        { deadline: Date.now() + 30_000 },
        (err, reply) => {
          if (err || !reply) {
            res.writeHead(502).end();
            return;
          }
          const body = JSON.stringify(HelloReply.toJSON(reply));
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
        },
      );
    });
  });
}
