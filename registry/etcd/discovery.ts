/**
 * `Discovery` over etcd: one-shot lists, and watches shared per service so any
 * number of channels to one service cost a single etcd watch.
 */
import type { Etcd3 } from "etcd3";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import type { Logger } from "../../runtime/logger";
import type { Discovery, DiscoveryUpdate } from "../registry";
import type { BackoffOptions } from "./backoff";
import { GarbageReporter } from "./garbage-reporter";
import { decodeInstance, servicePrefix } from "./keys";
import { readPrefix } from "./read-prefix";
import { ServiceWatcher } from "./service-watcher";

export interface EtcdDiscoveryContext {
  client: Etcd3;
  namespace: string;
  callTimeoutMs: number;
  logger: Logger;
  backoff?: BackoffOptions;
}

export class EtcdDiscovery implements Discovery {
  private readonly watchers = new Map<string, ServiceWatcher>();
  private readonly garbage: GarbageReporter;
  private closed = false;

  constructor(private readonly ctx: EtcdDiscoveryContext) {
    this.garbage = new GarbageReporter(ctx.logger);
  }

  /** The instances registered now, sorted by address. Rejects if etcd cannot be read. */
  async list(service: string): Promise<InstanceInfo[]> {
    const prefix = servicePrefix(this.ctx.namespace, service);
    const { kvs } = await readPrefix(this.ctx.client, prefix);
    const instances: InstanceInfo[] = [];
    const bad = new Set<string>();
    for (const kv of kvs) {
      const result = decodeInstance({ prefix, service }, kv.key, kv.value);
      if (result.ok) instances.push(result.instance);
      else {
        bad.add(kv.key.toString());
        this.garbage.note(kv.key.toString(), kv.mod_revision, result.reason, kv.value.length);
      }
    }
    this.garbage.reconcile(prefix, bad);
    this.garbage.flush();
    return instances.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.id < b.id ? -1 : 1));
  }

  watch(service: string, onUpdate: (update: DiscoveryUpdate) => void, onError?: (error: Error) => void): { stop(): void } {
    if (this.closed) throw new Error("etcd discovery is closed");
    servicePrefix(this.ctx.namespace, service); // validates the name before anything starts
    let watcher = this.watchers.get(service);
    if (!watcher) {
      watcher = new ServiceWatcher({ ...this.ctx, service, garbage: this.garbage });
      this.watchers.set(service, watcher);
    }
    const owner = watcher;
    const unsubscribe = owner.subscribe({ onUpdate: (instances) => onUpdate({ instances }), onError });
    let stopped = false;
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        unsubscribe();
        if (owner.size === 0 && this.watchers.get(service) === owner) {
          this.watchers.delete(service);
          void owner.stop();
        }
      },
    };
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    this.closed = true;
    const watchers = [...this.watchers.values()];
    this.watchers.clear();
    await Promise.all(watchers.map((w) => w.stop()));
  }
}
