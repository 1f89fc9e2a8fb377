/**
 * A small fleet for fault specs: greeter processes registered in etcd under one
 * namespace, a client that dials them through `etcd:///greeter`, and a view of
 * the client's instance set. Everything started is torn down by `close()`.
 */
import type { Etcd3 } from "etcd3";
import { createClient, etcdRegistry, type ClientOptions, type EtcdRegistry, type InstanceInfo } from "protomesh";
import { GreeterDefinition, type GreeterClient } from "../../../gen/examples/greeter/v1/greeter_protomesh";
import { captureLogger, type CapturedLogger } from "../../helpers/capture-logger";
import { uniqueNamespace } from "../../helpers/etcd";
import { startGreeterProcess, type GreeterProcess, type GreeterProcessOptions } from "../../helpers/greeter-process";

export interface Fleet {
  readonly namespace: string;
  readonly ttlSeconds: number;
  /** Running greeter processes, by instance id. */
  readonly instances: Map<string, GreeterProcess>;
  /** Starts a greeter process registered in this fleet's namespace. */
  start(id: string, options?: Partial<GreeterProcessOptions>): Promise<GreeterProcess>;
  /** A client-side registry (its own etcd connection) with a captured logger. */
  registry(endpoints?: string[]): { registry: EtcdRegistry; logger: CapturedLogger };
  /** A greeter client dialing `etcd:///greeter` through `registry`. */
  client(registry: EtcdRegistry, options?: ClientOptions): GreeterClient & { $close(): void };
  /** Follows the instance set `registry` delivers for greeter; `ids()` is the latest. */
  follow(registry: EtcdRegistry): InstanceView;
  close(): Promise<void>;
}

export interface InstanceView {
  /** Sorted instance ids of the latest set delivered. */
  ids(): string[];
  /** Resolves, with the time it happened, once `check(ids)` holds for the latest delivered set. */
  until(check: (ids: string[]) => boolean, timeoutMs: number, what: string): Promise<number>;
  stop(): void;
}

export function createFleet(etcdEndpoints: () => string[], ttlSeconds: number): Fleet {
  const namespace = uniqueNamespace();
  const instances = new Map<string, GreeterProcess>();
  const registries: EtcdRegistry[] = [];
  const clients: Array<{ $close(): void }> = [];
  const views: InstanceView[] = [];

  return {
    namespace,
    ttlSeconds,
    instances,
    async start(id, options = {}) {
      // The instances' own warnings (etcd unreachable, …) are expected here; PROTOMESH_TEST_LOG=1 shows them.
      const env = { PROTOMESH_LOG_LEVEL: process.env.PROTOMESH_TEST_LOG === "1" ? "info" : "error", ...options.env };
      const proc = await startGreeterProcess({ etcdEndpoints: etcdEndpoints(), ttlSeconds, namespace, id, ...options, env });
      instances.set(id, proc);
      void proc.exited.then(() => {
        if (instances.get(id) === proc) instances.delete(id);
      });
      return proc;
    },
    registry(endpoints = etcdEndpoints()) {
      const logger = captureLogger();
      const registry = etcdRegistry({ endpoints, namespace, ttlSeconds, logger, callTimeoutMs: 1000 });
      registries.push(registry);
      return { registry, logger };
    },
    client(registry, options = {}) {
      const client = createClient(GreeterDefinition, "etcd:///greeter", { discovery: registry, ...options });
      clients.push(client);
      return client;
    },
    follow(registry) {
      const view = followInstances(registry);
      views.push(view);
      return view;
    },
    async close() {
      for (const v of views.splice(0)) v.stop();
      for (const c of clients.splice(0)) c.$close();
      const procs = [...instances.values()];
      for (const p of procs) {
        p.kill("SIGCONT");
        p.kill("SIGKILL");
      }
      await Promise.all(procs.map((p) => p.exited));
      await Promise.all(registries.splice(0).map((r) => r.close()));
    },
  };
}

function followInstances(registry: EtcdRegistry): InstanceView {
  let latest: string[] = [];
  const listeners = new Set<() => void>();
  const sub = registry.watch("greeter", (update) => {
    latest = update.instances.map((i: InstanceInfo) => i.id).sort();
    for (const l of [...listeners]) l();
  });
  return {
    ids: () => latest,
    until(check, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const test = () => {
          if (!check(latest)) return;
          done();
          resolve(Date.now());
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting until the client's instance set ${what}; it is [${latest.join(", ")}]`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(test);
        };
        listeners.add(test);
        test();
      });
    },
    stop: () => sub.stop(),
  };
}

/** Instance ids registered in etcd now, read with a plain client. */
export async function registeredIds(raw: Etcd3, namespace: string): Promise<string[]> {
  const prefix = `/protomesh/${namespace}/services/greeter/`;
  const keys = await raw.getAll().prefix(prefix).keys();
  return keys.map((k) => k.slice(prefix.length)).sort();
}

/** Instance id → lease id of every greeter key in `namespace`, sorted by id. */
export async function leasesOf(raw: Etcd3, namespace: string): Promise<Map<string, string>> {
  const prefix = `/protomesh/${namespace}/services/greeter/`;
  const res = await raw.kv.range({ key: Buffer.from(prefix), range_end: Buffer.from(prefix.slice(0, -1) + "0") });
  return new Map(res.kvs.map((kv) => [kv.key.toString().slice(prefix.length), kv.lease] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
}
