/**
 * The processes the throughput scenarios share: one echo server per library (and a
 * traced protomesh one), one client process per library (and a traced protomesh one).
 * Idle processes cost nothing, so they all stay up while contenders take turns.
 */
import type { BenchContext } from "./context";
import type { ClientKind, InitClientArgs, TargetSpec } from "./echo-client";
import type { ServerKind, StartServerArgs } from "./echo-server";
import type { StreamResult, UnaryResult } from "./load";
import type { GcStats } from "./gc-watch";
import { BenchWorker } from "./workers";

/** Service names the protomesh echo servers register under. */
export const ECHO_SERVICE = "bench-echo";
export const TRACED_ECHO_SERVICE = "bench-echo-traced";
export const UNSCOPED_ECHO_SERVICE = "bench-echo-unscoped";
export const SAMPLED_ECHO_SERVICE = "bench-echo-sampled";

/** The parent-based sampler's ratio in the "10 % sampled" tracing contenders. */
export const SAMPLE_RATIO = 0.1;

/**
 * `traced`: tracing on, every call sampled; `sampled`: tracing on, 10 % of root spans sampled;
 * `otel-raw`: raw grpc-js traced by OpenTelemetry's `@opentelemetry/instrumentation-grpc`
 * (same SDK, sampler and discarding exporter as `traced`).
 */
export type ClientProcess = ClientKind | "traced" | "sampled" | "otel-raw";
/** `unscoped`: a protomesh server with `callScope: false` (no AsyncLocalStorage). */
export type ServerProcess = ServerKind | "traced" | "sampled" | "otel-raw" | "unscoped";

export interface EchoFleet {
  readonly addresses: Record<ServerProcess, string>;
  readonly servers: Record<ServerProcess, BenchWorker>;
  readonly clients: Record<ClientProcess, BenchWorker>;
  stop(): Promise<void>;
}

/** One side of a comparison: which client process calls which target, served by which server process. */
export interface Contender {
  readonly id: string;
  readonly label: string;
  readonly client: ClientProcess;
  readonly server: ServerProcess;
  readonly target: TargetSpec;
}

export async function startEchoFleet(ctx: BenchContext): Promise<EchoFleet> {
  const etcd = { etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace };
  const serverSpecs: [ServerProcess, StartServerArgs][] = [
    ["raw", { kind: "raw" }],
    ["protomesh", { kind: "protomesh", service: ECHO_SERVICE, ...etcd }],
    ["nice", { kind: "nice" }],
    ["traced", { kind: "protomesh", service: TRACED_ECHO_SERVICE, tracing: true, ...etcd }],
    ["unscoped", { kind: "protomesh", service: UNSCOPED_ECHO_SERVICE, callScope: false, ...etcd }],
    ["sampled", { kind: "protomesh", service: SAMPLED_ECHO_SERVICE, tracing: true, sampleRatio: SAMPLE_RATIO, ...etcd }],
    ["otel-raw", { kind: "raw", tracing: true }],
  ];
  const clientSpecs: [ClientProcess, InitClientArgs][] = [
    ["raw", { kind: "raw", ...etcd }],
    ["protomesh", { kind: "protomesh", ...etcd }],
    ["nice", { kind: "nice", ...etcd }],
    ["traced", { kind: "protomesh", tracing: true, ...etcd }],
    ["sampled", { kind: "protomesh", tracing: true, sampleRatio: SAMPLE_RATIO, ...etcd }],
    ["otel-raw", { kind: "raw", tracing: true, ...etcd }],
  ];
  const workers: BenchWorker[] = [];
  const serverWorkers: BenchWorker[] = [];
  try {
    const startServers = Promise.all(
      serverSpecs.map(async ([name, args]) => {
        const worker = await BenchWorker.start(`${name}-server`, "echo-server.ts", { cpu: ctx.cpus.server, profileDir: ctx.profileDir, env: envOf(name), compiled: ctx.compiled });
        workers.push(worker);
        serverWorkers.push(worker);
        const { address } = await worker.call<{ address: string }>("start", args);
        return [name, address, worker] as const;
      }),
    );
    const startClients = Promise.all(
      clientSpecs.map(async ([name, args]) => {
        const worker = await BenchWorker.start(`${name}-client`, "echo-client.ts", { cpu: ctx.cpus.client, profileDir: ctx.profileDir, env: envOf(name), compiled: ctx.compiled });
        workers.push(worker);
        await worker.call("init", args);
        return [name, worker] as const;
      }),
    );
    // Both groups at once: start-up is mostly compiling TypeScript, on every core.
    const [servers, clients] = await Promise.all([startServers, startClients]);
    return {
      addresses: Object.fromEntries(servers.map(([name, address]) => [name, address])) as EchoFleet["addresses"],
      servers: Object.fromEntries(servers.map(([name, , worker]) => [name, worker])) as EchoFleet["servers"],
      clients: Object.fromEntries(clients) as EchoFleet["clients"],
      async stop() {
        // Servers first: a protomesh server deregisters before its process goes.
        await Promise.all(serverWorkers.map((w) => w.call("stop").catch(() => undefined)));
        await Promise.all(workers.map((w) => w.stop()));
      },
    };
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop()));
    throw err;
  }
}

/** OpenTelemetry's grpc instrumentation is switched on only in the `otel-raw` processes. */
function envOf(name: ServerProcess | ClientProcess): Record<string, string> | undefined {
  return name === "otel-raw" ? { BENCH_OTEL_GRPC: "1" } : undefined;
}

/** A client worker's result plus the CPU its server used, and both sides' GC pauses, over the same run. */
export type WithServerCpu<T extends UnaryResult | StreamResult> = T & { serverCpuMicros: number; serverGc: GcStats; clientGc: GcStats };

/** Runs `command` on the contender's client and measures the server's CPU time and both sides' GC around it. */
export async function measure<T extends UnaryResult | StreamResult>(fleet: EchoFleet, c: Contender, command: "unary" | "stream", args: object): Promise<WithServerCpu<T>> {
  const server = fleet.servers[c.server];
  const client = fleet.clients[c.client];
  await Promise.all([server.call<GcStats>("gc"), client.call<GcStats>("gc")]);
  const before = await server.call<number>("cpu");
  const result = await client.call<T>(command, args);
  const after = await server.call<number>("cpu");
  const [serverGc, clientGc] = await Promise.all([server.call<GcStats>("gc"), client.call<GcStats>("gc")]);
  return { ...result, serverCpuMicros: after - before, serverGc, clientGc };
}

/** The contenders in rotated order for round `round`, so no one always goes first (or right after the same rival). */
export function rotate<T>(list: readonly T[], round: number): T[] {
  const k = round % list.length;
  const rotated = [...list.slice(k), ...list.slice(0, k)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}
