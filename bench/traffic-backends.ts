/**
 * Worker for `bench/traffic.ts slow|freeze`: greeter backends in their own process, so the
 * client's event loop is its own and a backend's extra latency is not hidden behind the
 * client's queueing. Each backend is a protomesh server registered in etcd under its own id;
 * `sayHello` waits a lognormal service time, multiplied by the backend's slowdown factor.
 *
 * Commands (over IPC, see `ipc.ts`): `start` the backends, `slow` to set one backend's factor
 * (the bench's toggle reaches the backends this way), `stop` to deregister and shut down.
 */
import { createServer, etcdRegistry, type EtcdRegistry, type Server } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { serveCommands } from "./ipc";

export interface StartBackendsArgs {
  etcdEndpoints: string[];
  namespace: string;
  /** Instance ids, one server each. */
  ids: string[];
  /** Median service time in ms (0: answer at once). */
  medianMs: number;
  /** σ of the service time's logarithm. */
  sigma: number;
  /** Lease TTL of the registrations, in seconds. */
  ttlSeconds: number;
}

export interface SlowArgs {
  id: string;
  /** Multiplies that backend's service time (1: healthy). */
  factor: number;
}

/** A busy machine makes etcd slow, not absent: wait for the registration rather than fail the run. */
const REGISTER_WAIT_MS = 120_000;

const backends = new Map<string, { server: Server; registry: EtcdRegistry; factor: number }>();

/** A lognormal sample with the given median and σ (Box–Muller). */
export function lognormalMs(medianMs: number, sigma: number): number {
  const u1 = Math.random() || 1e-12;
  const u2 = Math.random();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return medianMs * Math.exp(sigma * z);
}

async function start(args: StartBackendsArgs): Promise<{ id: string; address: string }[]> {
  const started: { id: string; address: string }[] = [];
  for (const id of args.ids) {
    if (backends.has(id)) throw new Error(`backend ${id} already started`);
    const registry = etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace, ttlSeconds: args.ttlSeconds, registerWaitMs: REGISTER_WAIT_MS });
    const server = createServer({ name: "greeter", registry, instance: { id } });
    const entry = { server, registry, factor: 1 };
    server.add(GreeterDefinition, {
      sayHello: async () => {
        if (args.medianMs > 0) {
          const ms = lognormalMs(args.medianMs, args.sigma) * entry.factor;
          await new Promise((resolve) => setTimeout(resolve, ms));
        }
        return { message: "", servedBy: id };
      },
    } as never);
    await server.listen("127.0.0.1:0");
    backends.set(id, entry);
    started.push({ id, address: server.address! });
  }
  return started;
}

function slow(args: SlowArgs): { id: string; factor: number } {
  const entry = backends.get(args.id);
  if (entry === undefined) throw new Error(`no backend ${args.id} in this process (it has ${[...backends.keys()].join(", ") || "none"})`);
  if (typeof args.factor !== "number" || !Number.isFinite(args.factor) || args.factor <= 0) throw new RangeError(`factor must be a positive number, got ${JSON.stringify(args.factor)}`);
  entry.factor = args.factor;
  return { id: args.id, factor: entry.factor };
}

async function stop(): Promise<void> {
  for (const { server, registry } of backends.values()) {
    await server.shutdown({ graceMs: 100 });
    await registry.close();
  }
  backends.clear();
}

serveCommands({ start, slow, stop });
