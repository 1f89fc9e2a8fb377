/**
 * One HTTP front in its own process, for `bench/gateway-instructions.ts`: the gateway or the
 * hand-written `node:http` handler (`gateway-hand.ts`) in front of a greeter at `upstream`.
 * Commands: `start { kind, upstream }` → the port; `cpu` → this process's CPU time so far (µs).
 */
import type * as http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { createGateway } from "../gateway";
import { handWrittenServer } from "./gateway-hand";
import { serveCommands } from "./ipc";

serveCommands({
  start: async ({ kind, upstream }: { kind: "gateway" | "hand"; upstream: string }) => {
    if (kind === "gateway") {
      const gw = await createGateway({ upstreams: [{ target: upstream, definitions: [HttpGreeterDefinition] }], accessLog: false });
      return gw.listen(0);
    }
    const server: http.Server = handWrittenServer(new grpc.Client(upstream, grpc.credentials.createInsecure()));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as { port: number }).port;
  },
  cpu: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
});
