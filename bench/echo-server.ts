/**
 * Worker: one echo server of one library (raw grpc-js, protomesh or nice-grpc), alone in
 * its process so that nothing one library switches on (async hooks, tracing) slows another.
 */
import * as grpc from "@grpc/grpc-js";
import { takeGcStats, watchGc } from "./gc-watch";
import { createServer as createNiceServer } from "nice-grpc";
import { createServer, type Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "protomesh/registry";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { NiceGreeterDefinition, niceEchoHandlers, protomeshEchoHandlers, rawEchoHandlers } from "./echo-services";
import { serveCommands } from "./ipc";
import { traceIntoTheVoid } from "./trace-sink";

export type ServerKind = "raw" | "protomesh" | "nice";

export interface StartServerArgs {
  kind: ServerKind;
  /** protomesh only: register under this service name in etcd. */
  service?: string;
  etcdEndpoints?: string[];
  namespace?: string;
  /** protomesh only: set up the OpenTelemetry SDK (spans dropped) before serving. */
  tracing?: boolean;
  /** protomesh only: the server's `callScope` option. */
  callScope?: boolean;
}

let stopServer: (() => Promise<void>) | undefined;

async function start(args: StartServerArgs): Promise<{ address: string }> {
  if (stopServer) throw new Error("echo server already started");
  switch (args.kind) {
    case "raw": {
      const server = new grpc.Server();
      const { service, implementation } = rawEchoHandlers();
      server.addService(service, implementation);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      stopServer = () => new Promise((resolve) => server.tryShutdown(() => resolve()));
      return { address: `127.0.0.1:${port}` };
    }
    case "nice": {
      const server = createNiceServer();
      server.add(NiceGreeterDefinition, niceEchoHandlers());
      const port = await server.listen("127.0.0.1:0");
      stopServer = () => server.shutdown();
      return { address: `127.0.0.1:${port}` };
    }
    case "protomesh": {
      if (args.tracing) traceIntoTheVoid("bench-echo-server");
      let registry: EtcdRegistry | undefined;
      if (args.service) registry = etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace });
      const server: Server = createServer({ name: args.service, registry, callScope: args.callScope });
      server.add(GreeterDefinition, protomeshEchoHandlers() as GreeterHandlers);
      const port = await server.listen("127.0.0.1:0");
      stopServer = async () => {
        await server.shutdown({ graceMs: 1000 });
        await registry?.close();
      };
      return { address: `127.0.0.1:${port}` };
    }
  }
}

serveCommands({
  start,
  /** GC pauses since the last `gc` command (see gc-watch.ts). */
  gc: () => takeGcStats(),
  /** CPU time (user + system) this process has used so far, in µs. */
  cpu(): number {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
  async stop() {
    await stopServer?.();
    stopServer = undefined;
  },
});

watchGc();
