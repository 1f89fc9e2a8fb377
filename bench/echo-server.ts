/**
 * Worker: one echo server of one library (raw grpc-js, protomesh or nice-grpc), alone in
 * its process so that nothing one library switches on (async hooks, tracing) slows another.
 */
// First: it must patch @grpc/grpc-js before anything loads it.
import "./otel-grpc-preload";
import * as grpc from "@grpc/grpc-js";
import { takeGcStats, watchGc } from "./gc-watch";
import { createServer as createNiceServer } from "nice-grpc";
import { createServer, type Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry, type RegistrationHandle } from "protomesh/registry";
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
  /**
   * Set up the OpenTelemetry SDK (spans dropped) before serving. A raw server gets spans only
   * in a worker started with `BENCH_OTEL_GRPC=1` (OpenTelemetry's grpc instrumentation).
   */
  tracing?: boolean;
  /** With `tracing`: the ratio of root spans sampled (parent-based; default 1). */
  sampleRatio?: number;
  /** protomesh only: the server's `callScope` option. */
  callScope?: boolean;
  /** raw only: also register the server in etcd under this name (for a protomesh client's `etcd:///` target). */
  registerAs?: string;
}

/** A busy machine (or valgrind) makes etcd slow, not absent: wait for the registration rather than fail the run. */
const REGISTER_WAIT_MS = 120_000;

let stopServer: (() => Promise<void>) | undefined;

async function start(args: StartServerArgs): Promise<{ address: string }> {
  if (stopServer) throw new Error("echo server already started");
  switch (args.kind) {
    case "raw": {
      if (args.tracing) traceIntoTheVoid("bench-echo-server", args.sampleRatio);
      const server = new grpc.Server();
      const { service, implementation } = rawEchoHandlers();
      server.addService(service, implementation);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      const address = `127.0.0.1:${port}`;
      let registry: EtcdRegistry | undefined;
      let handle: RegistrationHandle | undefined;
      if (args.registerAs) {
        registry = etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace, registerWaitMs: REGISTER_WAIT_MS });
        handle = await registry.register({ service: args.registerAs, address });
      }
      stopServer = async () => {
        await handle?.deregister();
        await registry?.close();
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      };
      return { address };
    }
    case "nice": {
      const server = createNiceServer();
      server.add(NiceGreeterDefinition, niceEchoHandlers());
      const port = await server.listen("127.0.0.1:0");
      stopServer = () => server.shutdown();
      return { address: `127.0.0.1:${port}` };
    }
    case "protomesh": {
      if (args.tracing) traceIntoTheVoid("bench-echo-server", args.sampleRatio);
      let registry: EtcdRegistry | undefined;
      if (args.service) registry = etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace, registerWaitMs: REGISTER_WAIT_MS });
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
