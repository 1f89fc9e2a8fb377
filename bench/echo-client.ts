/**
 * Worker: the clients of one library, driven by the orchestrator one measured window at
 * a time. One process per library, for the same reason as the servers.
 */
// First: it must patch @grpc/grpc-js before anything loads it.
import "./otel-grpc-preload";
import * as grpc from "@grpc/grpc-js";
import { takeGcStats, watchGc } from "./gc-watch";
import { createChannel, createClient as createNiceClient, type Client as NiceClient } from "nice-grpc";
import { createClient, type CallOptions } from "protomesh";
import { etcdRegistry, registerEtcdResolver, setDefaultDiscovery } from "protomesh/registry";
import { GreeterDefinition, type GreeterClient as ProtomeshGreeter } from "../gen/examples/greeter/v1/greeter_protomesh";
import { GreeterClient as RawGreeter } from "../gen/examples/greeter/v1/greeter";
import { NiceGreeterDefinition, payload } from "./echo-services";
import { closedLoop, fixedCalls, fixedStreams, streamLoop, type FixedResult, type StreamResult, type UnaryResult, type Window } from "./load";
import { serveCommands } from "./ipc";
import { traceIntoTheVoid } from "./trace-sink";

export type ClientKind = "raw" | "protomesh" | "nice";

export interface InitClientArgs {
  kind: ClientKind;
  etcdEndpoints: string[];
  namespace: string;
  /** Set up the OpenTelemetry SDK (spans dropped); a raw client traces only with `BENCH_OTEL_GRPC=1`. */
  tracing?: boolean;
  /** With `tracing`: the ratio of root spans sampled (parent-based; default 1). */
  sampleRatio?: number;
  /**
   * protomesh only: `false` turns HTTP/2 keepalive pings off, for a client that drives a
   * server running under valgrind (too slow to answer a ping within its 2 s).
   */
  keepalive?: boolean;
}

/** Where calls go: a static `host:port`, or (protomesh) `etcd:///<service>` with a balancer. */
export interface TargetSpec {
  address?: string;
  service?: string;
  balancer?: "round_robin" | "consistent_hash";
}

export interface UnaryArgs {
  target: TargetSpec;
  payloadBytes: number;
  window: Window;
}

/** A fixed amount of work rather than a window: for instruction counts. */
export interface FixedArgs {
  target: TargetSpec;
  payloadBytes: number;
  /** Calls (unary) or streams (streaming) to make. */
  total: number;
  concurrency: number;
  /** Streaming only: messages per stream. */
  perStream?: number;
}

export interface StreamArgs {
  target: TargetSpec;
  payloadBytes: number;
  perStream: number;
  window: Window;
}

/** What one library's client must do for the benchmarks. */
interface EchoClient {
  unary(name: string, seq: number): Promise<unknown>;
  stream(name: string, count: number, onMessage: () => void): Promise<void>;
}

let kind: ClientKind | undefined;
let keepalive = true;
const clients = new Map<string, EchoClient>();

/** Keys for consistent hashing: one per call, drawn from a set large enough to spread. */
const HASH_KEYS = Array.from({ length: 4096 }, (_, i) => `user-${i}`);

function rawClient(address: string): EchoClient {
  const client = new RawGreeter(address, grpc.credentials.createInsecure());
  return {
    unary: (name) =>
      new Promise((resolve, reject) => {
        client.sayHello({ name }, (err, reply) => (err ? reject(err) : resolve(reply)));
      }),
    stream: (name, count, onMessage) =>
      new Promise((resolve, reject) => {
        const call = client.streamHellos({ name, count, intervalMs: 0 });
        call.on("data", onMessage);
        call.on("error", reject);
        call.on("end", resolve);
      }),
  };
}

function niceClient(address: string): EchoClient {
  const client: NiceClient<typeof NiceGreeterDefinition> = createNiceClient(NiceGreeterDefinition, createChannel(address));
  return {
    unary: (name) => client.sayHello({ name }),
    async stream(name, count, onMessage) {
      for await (const _ of client.streamHellos({ name, count })) onMessage();
    },
  };
}

function protomeshClient(target: TargetSpec): EchoClient {
  const consistent = target.balancer === "consistent_hash";
  const client: ProtomeshGreeter = createClient(GreeterDefinition, target.service ? `etcd:///${target.service}` : target.address!, {
    balancer: consistent ? { consistentHash: {} } : "round_robin",
    ...(keepalive ? {} : { keepalive: false as const }),
  });
  // One options object per key, made up front: the call's own cost is what is measured.
  const perKey: CallOptions[] = HASH_KEYS.map((hashKey) => ({ hashKey }));
  return {
    unary: consistent ? (name, seq) => client.sayHello({ name }, perKey[seq & 4095]) : (name) => client.sayHello({ name }),
    async stream(name, count, onMessage) {
      for await (const _ of client.streamHellos({ name, count })) onMessage();
    },
  };
}

function clientFor(target: TargetSpec): EchoClient {
  const key = JSON.stringify(target);
  let client = clients.get(key);
  if (client) return client;
  if (kind === undefined) throw new Error("echo client: init first");
  if (kind !== "protomesh" && !target.address) throw new Error(`${kind} client needs a static address`);
  client = kind === "raw" ? rawClient(target.address!) : kind === "nice" ? niceClient(target.address!) : protomeshClient(target);
  clients.set(key, client);
  return client;
}

serveCommands({
  /** GC pauses since the last `gc` command (see gc-watch.ts). */
  gc: () => takeGcStats(),
  /** Resolves once one call to `target` has succeeded (the channel resolved and connected). */
  async ready(args: { target: TargetSpec; timeoutMs: number }): Promise<void> {
    const client = clientFor(args.target);
    const deadline = Date.now() + args.timeoutMs;
    for (;;) {
      try {
        await client.unary("ready", 0);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  },
  init(args: InitClientArgs) {
    kind = args.kind;
    keepalive = args.keepalive !== false;
    if (args.kind === "protomesh") {
      registerEtcdResolver();
      setDefaultDiscovery(etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace }));
    }
    if (args.tracing) traceIntoTheVoid("bench-echo-client", args.sampleRatio);
  },
  unary(args: UnaryArgs): Promise<UnaryResult> {
    const client = clientFor(args.target);
    const name = payload(args.payloadBytes);
    return closedLoop((seq) => client.unary(name, seq), args.window);
  },
  unaryFixed(args: FixedArgs): Promise<FixedResult> {
    const client = clientFor(args.target);
    const name = payload(args.payloadBytes);
    return fixedCalls((seq) => client.unary(name, seq), args.total, args.concurrency);
  },
  streamFixed(args: FixedArgs): Promise<FixedResult> {
    const client = clientFor(args.target);
    const name = payload(args.payloadBytes);
    return fixedStreams((onMessage) => client.stream(name, args.perStream ?? 1000, onMessage), args.total, args.concurrency);
  },
  stream(args: StreamArgs): Promise<StreamResult> {
    const client = clientFor(args.target);
    const name = payload(args.payloadBytes);
    return streamLoop((onMessage) => client.stream(name, args.perStream, onMessage), args.window);
  },
});

watchGc();
