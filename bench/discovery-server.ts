/**
 * Worker: protomesh instances that register in etcd and note, on the shared clock, when
 * registration started, when they served their first and last call, and when shutdown
 * started and ended. One process can host several instances (graceful trials); a SIGKILL
 * trial gives each instance its own process.
 */
import { createServer, type Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "protomesh/registry";
import { GreeterDefinition, type GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { sharedNow, waitFor } from "./clock";
import { serveCommands } from "./ipc";

export interface StartInstanceArgs {
  id: string;
  service: string;
  etcdEndpoints: string[];
  namespace: string;
  ttlSeconds?: number;
}

export interface StartedInstance {
  address: string;
  /** Serving; registration (lease grant, then put) starts now. */
  registeringAt: number;
  /** `listen()` returned: the put is acknowledged. */
  registeredAt: number;
}

export interface ShutdownTimes {
  startedAt: number;
  /** When the last call reached the handler. */
  lastCallAt: number;
  closedAt: number;
  calls: number;
  /** Calls that arrived after shutdown started. */
  callsAfterStart: number;
}

interface Instance {
  server: Server;
  registry: EtcdRegistry;
  firstCallAt?: number;
  lastCallAt?: number;
  calls: number;
  shutdownAt?: number;
  callsAfterShutdown: number;
}

const instances = new Map<string, Instance>();

function instance(id: string): Instance {
  const found = instances.get(id);
  if (!found) throw new Error(`no instance ${id}`);
  return found;
}

serveCommands({
  async start(args: StartInstanceArgs): Promise<StartedInstance> {
    const registry = etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace, ttlSeconds: args.ttlSeconds });
    const server = createServer({ name: args.service, registry, instance: { id: args.id } });
    const state: Instance = { server, registry, calls: 0, callsAfterShutdown: 0 };
    const handlers: Partial<GreeterHandlers> = {
      async sayHello(req) {
        const now = sharedNow();
        state.firstCallAt ??= now;
        state.lastCallAt = now;
        state.calls++;
        if (state.shutdownAt !== undefined) state.callsAfterShutdown++;
        return { message: req.name, servedBy: args.id };
      },
    };
    server.add(GreeterDefinition, handlers as GreeterHandlers);
    let registeringAt = 0;
    server.on("serving", () => {
      registeringAt = sharedNow();
    });
    instances.set(args.id, state);
    await server.listen("127.0.0.1:0");
    return { address: server.address!, registeringAt, registeredAt: sharedNow() };
  },

  /** Resolves with the time of the instance's first served call. */
  firstCall(args: { id: string; timeoutMs: number }): Promise<number> {
    const state = instance(args.id);
    return waitFor(`first call to ${args.id}`, () => state.firstCallAt, args.timeoutMs, 1);
  },

  async shutdown(args: { id: string }): Promise<ShutdownTimes> {
    const state = instance(args.id);
    const startedAt = sharedNow();
    state.shutdownAt = startedAt;
    await state.server.shutdown({ graceMs: 2000 });
    const closedAt = sharedNow();
    await state.registry.close();
    instances.delete(args.id);
    return { startedAt, lastCallAt: state.lastCallAt ?? Number.NaN, closedAt, calls: state.calls, callsAfterStart: state.callsAfterShutdown };
  },
});
