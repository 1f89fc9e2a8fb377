/**
 * Follows one service's traffic-rule key: read it at revision R, watch from R + 1 (the same
 * list-then-watch loop as discovery). A value that does not decode or validate never reaches a
 * client: the last good rule stays in force and the bad one is reported once (per revision). A
 * deleted key means "no rule". Losing etcd keeps the rule in force.
 */
import type { Etcd3, IEvent } from "etcd3";
import type { Logger } from "../../runtime/logger";
import type { TrafficRuleUpdate } from "../registry";
import { Backoff, type BackoffOptions } from "./backoff";
import { runListWatch } from "./list-watch";
import { decodeTrafficRecord, trafficKeys } from "./traffic-keys";

export interface TrafficWatcherContext {
  client: Etcd3;
  namespace: string;
  service: string;
  callTimeoutMs: number;
  logger: Logger;
  backoff?: BackoffOptions;
}

const NO_RULE: TrafficRuleUpdate = { rule: undefined, version: 0 };

export class TrafficWatcher {
  private readonly key: string;
  private readonly subscribers = new Set<(update: TrafficRuleUpdate) => void>();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private revision = 0n;
  private synced = false;
  private current: TrafficRuleUpdate = NO_RULE;
  /** Mod revision of the value in force ("0": no key). */
  private currentMod = "0";
  /** Mod revision of the last bad value reported, so each is reported once. */
  private reportedBad: string | undefined;
  private failures = 0;
  private loop: Promise<void> | undefined;

  constructor(private readonly ctx: TrafficWatcherContext) {
    this.key = trafficKeys(ctx.namespace, ctx.service).current;
    this.backoff = new Backoff({ initialMs: 100, maxMs: 2000, ...ctx.backoff });
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Adds a subscriber; it hears the rule in force once known (asynchronously), then each change. */
  subscribe(onUpdate: (update: TrafficRuleUpdate) => void): () => void {
    this.subscribers.add(onUpdate);
    this.loop ??= this.run();
    if (this.synced) {
      const current = this.current;
      queueMicrotask(() => this.subscribers.has(onUpdate) && onUpdate(current));
    }
    return () => void this.subscribers.delete(onUpdate);
  }

  async stop(): Promise<void> {
    this.subscribers.clear();
    if (!this.abort.signal.aborted) this.abort.abort();
    await this.loop;
  }

  private run(): Promise<void> {
    return runListWatch(
      {
        client: this.ctx.client,
        // A prefix watch of the key itself also sees its versions/ and any service whose name
        // extends this one; apply() keeps only the exact key.
        prefix: this.key,
        callTimeoutMs: this.ctx.callTimeoutMs,
        backoff: this.backoff,
        sync: () => this.read(),
        revision: () => this.revision,
        apply: (events) => this.apply(events),
        onWatching: () => {
          if (this.failures > 0) this.ctx.logger.info("traffic rule watch recovered", { service: this.ctx.service });
          this.failures = 0;
          this.backoff.reset();
        },
        onFailure: (err) => {
          if (this.failures++ === 0) {
            this.ctx.logger.warn("traffic rule watch failed; keeping the rule in force and retrying", { service: this.ctx.service, error: (err as Error).message });
          }
        },
        onCompacted: () => undefined,
      },
      this.abort.signal,
    );
  }

  private async read(): Promise<void> {
    const res = await this.ctx.client.kv.range({ key: Buffer.from(this.key) });
    this.revision = BigInt(res.header.revision);
    const kv = res.kvs[0];
    this.accept(kv === undefined ? undefined : kv.value, kv?.mod_revision ?? "0", true);
  }

  private apply(events: IEvent[]): void {
    let last: { value: Buffer | undefined; modRevision: string } | undefined;
    const applied = this.revision;
    for (const event of events) {
      // One Txn writes the version key and the key in force at the same revision: compare with
      // what was applied before this batch, not with the previous event.
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= applied) continue;
      if (revision > this.revision) this.revision = revision;
      if (event.kv.key.toString() !== this.key) continue;
      last = { value: event.type === "Delete" ? undefined : event.kv.value, modRevision: event.kv.mod_revision };
    }
    if (last) this.accept(last.value, last.modRevision, false);
  }

  private accept(value: Buffer | undefined, modRevision: string, initial: boolean): void {
    let next: TrafficRuleUpdate;
    if (value === undefined) {
      next = NO_RULE;
    } else {
      const decoded = decodeTrafficRecord(value);
      if (!decoded.ok) {
        if (this.reportedBad !== modRevision) {
          this.reportedBad = modRevision;
          this.ctx.logger.warn("ignoring an invalid traffic rule; the last good rule stays in force", {
            service: this.ctx.service,
            key: this.key,
            modRevision,
            reason: decoded.reason,
            inForce: this.current.version,
          });
        }
        if (!initial || this.synced) return;
        // First read and already garbage: there is no last good rule, so clients run without one.
        next = this.current;
      } else {
        next = { rule: decoded.rule, version: decoded.version };
      }
    }
    const changed = !this.synced || modRevision !== this.currentMod;
    this.synced = true;
    this.current = next;
    this.currentMod = modRevision;
    if (changed) for (const subscriber of [...this.subscribers]) subscriber(next);
  }
}
