/**
 * Mirrors the instances of one service from etcd: list the prefix at revision
 * R, then watch from R+1. Deletes from the watch are authoritative; losing etcd
 * is not: the last-known set stays and the watch resumes from the last applied
 * revision when etcd answers again, so the missed events (deletes included)
 * replay in order. If those events were compacted away, relist and apply the
 * difference. Subscribers always receive the full current set.
 */
import type { Etcd3, IEvent, IKeyValue } from "etcd3";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import type { Logger } from "../../runtime/logger";
import { Backoff, type BackoffOptions } from "./backoff";
import type { GarbageReporter } from "./garbage-reporter";
import { decodeInstance, servicePrefix } from "./keys";
import { readPrefix } from "./read-prefix";
import { runListWatch } from "./list-watch";
import { registryMetrics } from "../../runtime/metrics-registry";
import { describeFailure, etcdFailureKind, failureReason } from "./etcd-errors";

export interface WatchSubscriber {
  onUpdate(instances: readonly InstanceInfo[]): void;
  /** Only before the first successful list: why there is no set yet. */
  onError?(error: Error): void;
}

export interface ServiceWatcherContext {
  client: Etcd3;
  namespace: string;
  service: string;
  callTimeoutMs: number;
  logger: Logger;
  garbage: GarbageReporter;
  backoff?: BackoffOptions;
}


export class ServiceWatcher {
  private readonly entries = new Map<string, InstanceInfo>();
  private readonly subscribers = new Map<WatchSubscriber, { seen: number }>();
  private readonly abort = new AbortController();
  private readonly prefix: string;
  private readonly backoff: Backoff;
  /** Highest revision whose changes are in `entries`. */
  private revision = 0n;
  private synced = false;
  private version = 0;
  private snapshot: readonly InstanceInfo[] = [];
  private lastError: Error | undefined;
  private outageSince: number | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly ctx: ServiceWatcherContext) {
    this.prefix = servicePrefix(ctx.namespace, ctx.service);
    this.backoff = new Backoff({ initialMs: 100, maxMs: 2000, ...ctx.backoff });
  }

  /** Number of live subscriptions. */
  get size(): number {
    return this.subscribers.size;
  }

  /** Adds a subscriber (starting the watch on the first); it hears the current state asynchronously. */
  subscribe(subscriber: WatchSubscriber): () => void {
    const slot = { seen: 0 };
    this.subscribers.set(subscriber, slot);
    this.loop ??= this.run();
    queueMicrotask(() => {
      if (this.subscribers.get(subscriber) !== slot) return;
      if (this.synced && slot.seen < this.version) {
        slot.seen = this.version;
        this.deliver(subscriber, this.snapshot);
      } else if (!this.synced && this.lastError) {
        this.deliverError(subscriber, this.lastError);
      }
    });
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.subscribers.clear();
    if (!this.abort.signal.aborted) this.abort.abort();
    await this.loop;
  }

  private run(): Promise<void> {
    return runListWatch(
      {
        client: this.ctx.client,
        prefix: this.prefix,
        callTimeoutMs: this.ctx.callTimeoutMs,
        backoff: this.backoff,
        sync: () => this.relist(),
        revision: () => this.revision,
        apply: (events) => this.apply(events),
        onWatching: () => this.noteRecovered(),
        onFailure: (err) => this.noteFailure(err),
        onCompacted: (fromRevision, compactRevision) =>
          this.ctx.logger.info("watch fell behind etcd compaction; relisting", {
            service: this.ctx.service,
            fromRevision: String(fromRevision),
            compactRevision: String(compactRevision),
          }),
      },
      this.abort.signal,
    );
  }

  private async relist(): Promise<void> {
    const { kvs, revision } = await readPrefix(this.ctx.client, this.prefix);
    const next = new Map<string, InstanceInfo>();
    const bad = new Set<string>();
    for (const kv of kvs) {
      const instance = this.decode(kv);
      if (instance) next.set(kv.key.toString(), instance);
      else bad.add(kv.key.toString());
    }
    this.ctx.garbage.reconcile(this.prefix, bad);
    this.ctx.garbage.flush();
    let changed = next.size !== this.entries.size || !this.synced;
    for (const [key, instance] of next) if (!sameInstance(this.entries.get(key), instance)) changed = true;
    this.entries.clear();
    for (const [key, instance] of next) this.entries.set(key, instance);
    this.revision = revision;
    this.synced = true;
    this.lastError = undefined;
    this.noteRecovered();
    if (changed) this.emit();
  }

  private apply(events: IEvent[]): void {
    const base = this.revision;
    let changed = false;
    for (const event of events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= base) continue; // already applied (a resumed watch may overlap)
      if (revision > this.revision) this.revision = revision;
      const key = event.kv.key.toString();
      if (event.type === "Delete") {
        this.ctx.garbage.forget(key);
        changed = this.entries.delete(key) || changed;
        continue;
      }
      const instance = this.decode(event.kv);
      if (instance) {
        this.ctx.garbage.forget(key);
        if (!sameInstance(this.entries.get(key), instance)) {
          this.entries.set(key, instance);
          changed = true;
        }
      } else {
        // The key's current value is unusable: it no longer describes a live instance.
        changed = this.entries.delete(key) || changed;
      }
    }
    this.ctx.garbage.flush();
    if (changed) this.emit();
  }

  private decode(kv: IKeyValue): InstanceInfo | undefined {
    const result = decodeInstance({ prefix: this.prefix, service: this.ctx.service }, kv.key, kv.value);
    if (result.ok) return result.instance;
    this.ctx.garbage.note(kv.key.toString(), kv.mod_revision, result.reason, kv.value.length);
    return undefined;
  }

  private emit(): void {
    this.version++;
    const previous = this.snapshot;
    this.snapshot = Object.freeze(
      [...this.entries.values()].sort((a, b) => cmp(a.address, b.address) || cmp(a.id, b.id)),
    );
    this.logChange(previous, this.snapshot);
    registryMetrics().setKnownInstances(this.ctx.service, this.snapshot.length);
    for (const [subscriber, slot] of [...this.subscribers]) {
      slot.seen = this.version;
      this.deliver(subscriber, this.snapshot);
    }
  }

  /** One log line per change of the instance set, naming who joined and who left. */
  private logChange(previous: readonly InstanceInfo[] | undefined, next: readonly InstanceInfo[]): void {
    const before = new Map((previous ?? []).map((i) => [i.id, i.address]));
    const after = new Map(next.map((i) => [i.id, i.address]));
    const added = [...after].filter(([id]) => !before.has(id)).map(([id, address]) => `${id}@${address}`);
    const removed = [...before].filter(([id]) => !after.has(id)).map(([id, address]) => `${id}@${address}`);
    if (added.length === 0 && removed.length === 0) return;
    this.ctx.logger.info("instances changed", { service: this.ctx.service, added, removed, total: next.length });
  }

  private deliver(subscriber: WatchSubscriber, instances: readonly InstanceInfo[]): void {
    try {
      subscriber.onUpdate(instances);
    } catch (err) {
      this.ctx.logger.error("discovery subscriber threw", { service: this.ctx.service, err });
    }
  }

  private deliverError(subscriber: WatchSubscriber, error: Error): void {
    try {
      subscriber.onError?.(error);
    } catch (err) {
      this.ctx.logger.error("discovery subscriber threw", { service: this.ctx.service, err });
    }
  }

  private noteFailure(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      if (this.synced) {
        this.ctx.logger.warn("lost contact with etcd; keeping the last-known instances", {
          service: this.ctx.service,
          instances: this.entries.size,
          reason: describeFailure(error),
        });
      } else {
        const kind = etcdFailureKind(error);
        const message = kind === "access" ? "etcd refused to list instances (permission denied); will keep trying" : kind === "tls" ? "TLS towards etcd failed; cannot list instances; will keep trying" : "cannot reach etcd to list instances; will keep trying";
        this.ctx.logger.warn(message, { service: this.ctx.service, reason: failureReason(error) });
      }
    }
    if (!this.synced) {
      this.lastError = error;
      for (const subscriber of [...this.subscribers.keys()]) this.deliverError(subscriber, error);
    }
  }

  private noteRecovered(): void {
    if (this.outageSince === undefined) return;
    this.ctx.logger.info("etcd reachable again; instances in sync", {
      service: this.ctx.service,
      downMs: Date.now() - this.outageSince,
    });
    this.outageSince = undefined;
  }
}

function sameInstance(a: InstanceInfo | undefined, b: InstanceInfo): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
