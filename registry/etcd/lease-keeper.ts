/**
 * Keeps one key in etcd under a lease for as long as the process wants it
 * there. The loop grants a lease, puts the key, then holds it: a keepalive
 * every TTL/3 (each with a deadline) and a watch on the key itself. It counts
 * the registration as lost when etcd says the lease is gone (TTL ≤ 0), when the
 * key is deleted or taken over by another writer, or when etcd has been
 * unreachable for a whole TTL. Then it starts over with a fresh lease, with
 * jittered backoff, forever: giving up after N attempts is how a registry
 * silently loses an instance during a long etcd outage.
 *
 * etcd3's `Lease` has its own keepalive and "lost" event; we do not use them so
 * that every call has a deadline and every loss path is ours to test.
 */
import type { Etcd3 } from "etcd3";
import { etcdFailureKind, failureReason, isConfigurationFailure } from "./etcd-errors";
import type { Logger } from "../../runtime/logger";
import { Backoff, sleep, type BackoffOptions } from "./backoff";
import { deadlineIn } from "./options";
import { openWatch } from "./watch-stream";
import { registryMetrics } from "../../runtime/metrics-registry";

export const DEFAULT_TTL_SECONDS = 10;
/** etcd rounds shorter TTLs up to this (with default election timings). */
export const MIN_TTL_SECONDS = 2;

/** Returns `ttlSeconds` if etcd can honour it; throws otherwise. */
export function checkTtl(ttlSeconds: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < MIN_TTL_SECONDS) {
    throw new Error(`invalid lease TTL ${ttlSeconds}: must be a whole number of seconds, at least ${MIN_TTL_SECONDS}`);
  }
  return ttlSeconds;
}

/** `registering` until the first put; `lost` while re-registering; `stopped` after `stop()`. */
export type KeeperState = "registering" | "registered" | "lost" | "stopped";

export interface LeaseKeeperOptions {
  client: Etcd3;
  key: string;
  value: string;
  ttlSeconds?: number;
  callTimeoutMs: number;
  logger: Logger;
  backoff?: BackoffOptions;
}

export type StateListener = (state: KeeperState, detail: { reason?: string; leaseId?: string }) => void;

type Hold = { leaseId: string; revision: bigint };

export class LeaseKeeper {
  private currentState: KeeperState = "registering";
  private lease: string | undefined;
  private unreachableSince: number | undefined;
  private everRegistered = false;
  private readonly listeners = new Set<StateListener>();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly ttlMs: number;
  private loop: Promise<void> | undefined;
  private refusal: Error | undefined;
  private failure: Error | undefined;
  private warnedUnreachable = false;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.ttlMs = checkTtl(options.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000;
    this.backoff = new Backoff({ initialMs: 100, maxMs: 2000, ...options.backoff });
  }

  get state(): KeeperState {
    return this.currentState;
  }

  /** The lease currently holding the key, if any. */
  get leaseId(): string | undefined {
    return this.lease;
  }

  /** The last error etcd (or the way to it) gave, for messages about a registration that is not in place. */
  get lastFailure(): Error | undefined {
    return this.failure;
  }

  /** The logger this keeper reports through. */
  get logger(): Logger {
    return this.options.logger;
  }

  /** Why the keeper gave up before ever registering: etcd refused these credentials or this key, or TLS failed. */
  get refused(): Error | undefined {
    return this.refusal;
  }

  /** Starts the loop; idempotent. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves the next time the key is in place (at once if it is); rejects if stopped first. */
  whenRegistered(): Promise<void> {
    if (this.currentState === "registered") return Promise.resolve();
    if (this.currentState === "stopped") return Promise.reject(this.refusal ?? new Error("lease keeper stopped"));
    return new Promise((resolve, reject) => {
      const off = this.onStateChange((state) => {
        if (state === "registered") resolve();
        else if (state === "stopped") reject(this.refusal ?? new Error("lease keeper stopped"));
        else return;
        off();
      });
    });
  }

  /** Calls `listener` on every state change; returns an unsubscribe function. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops renewing and revokes the lease, so watchers see the key deleted at once. */
  async stop(): Promise<void> {
    if (!this.abort.signal.aborted) this.abort.abort();
    await this.loop;
    if (this.currentState !== "stopped") this.setState("stopped", {});
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let hold: Hold;
      try {
        hold = await this.acquire();
      } catch (err) {
        // A first registration that etcd refuses, or that fails TLS, is a configuration error: say so
        // instead of retrying forever. Once registered, a refusal (say a role revoked for a while,
        // a certificate being rotated) is retried like an outage.
        if (!this.everRegistered && isConfigurationFailure(err)) {
          this.refuse(err as Error);
          break;
        }
        this.noteFailure(err);
        await sleep(this.backoff.next(), signal);
        continue;
      }
      const previous = this.lease;
      this.lease = hold.leaseId;
      if (previous !== undefined) this.revokeQuietly(previous);
      if (signal.aborted) break;
      this.noteSuccess();
      this.setState("registered", { leaseId: hold.leaseId });
      const heldAt = Date.now();
      const reason = await this.hold(hold);
      if (reason === undefined) break;
      this.setState("lost", { reason, leaseId: hold.leaseId });
      // A registration that held for a TTL was healthy: retry fast. One lost again at once
      // (say another process shares the instance id) keeps backing off instead of fighting.
      if (Date.now() - heldAt >= this.ttlMs) this.backoff.reset();
      await sleep(this.backoff.next(), signal);
    }
    await this.revokeCurrent();
    if (this.refusal) this.setState("stopped", { reason: this.refusal.message });
  }

  private refuse(err: Error): void {
    const { key, logger } = this.options;
    const prefix = key.split("/").slice(0, 3).join("/") + "/";
    if (etcdFailureKind(err) === "tls") {
      this.refusal = new Error(
        `TLS towards etcd failed, cannot register ${key}: ${err.message}. Check that tls.ca signs etcd's certificate, that tls.cert and tls.key are a client certificate etcd trusts (etcd runs with --client-cert-auth), and that the endpoints speak TLS`,
        { cause: err },
      );
      logger.error("TLS towards etcd failed; not retrying", { key, reason: failureReason(err) });
      return;
    }
    this.refusal = new Error(
      `etcd refused to register ${key}: ${err.message}. Check the etcd user and password, and that its role grants read-write on ${prefix}`,
      { cause: err },
    );
    logger.error("etcd refused the registration; not retrying", { key, reason: failureReason(err) });
  }

  /** Grants a lease and puts the key under it. */
  private async acquire(): Promise<Hold> {
    const { client, key, value } = this.options;
    const grant = await client.leaseClient.leaseGrant({ TTL: this.ttlMs / 1000 });
    try {
      const put = await client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: grant.ID });
      return { leaseId: grant.ID, revision: BigInt(put.header.revision) };
    } catch (err) {
      this.revokeQuietly(grant.ID);
      throw err;
    }
  }

  /** Keeps the lease alive until it is lost (resolves with why) or the keeper stops (resolves undefined). */
  private hold(hold: Hold): Promise<string | undefined> {
    const done = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, done.signal]);
    return new Promise<string | undefined>((resolve) => {
      let settled = false;
      const finish = (reason: string | undefined) => {
        if (settled) return;
        settled = true;
        resolve(reason);
        done.abort();
      };
      signal.addEventListener("abort", () => finish(undefined), { once: true });
      void this.keepAliveLoop(hold.leaseId, signal, finish);
      void this.watchOwnKey(hold, signal, finish);
    });
  }

  private async keepAliveLoop(leaseId: string, signal: AbortSignal, lose: (reason: string) => void): Promise<void> {
    const interval = this.ttlMs / 3;
    let lastOk = Date.now();
    let nextAt = lastOk + interval;
    while (!signal.aborted) {
      await sleep(Math.max(0, nextAt - Date.now()), signal);
      if (signal.aborted) return;
      const attemptAt = Date.now();
      try {
        const ttl = await keepAliveOnce(this.options.client, leaseId, Math.min(this.options.callTimeoutMs, interval));
        if (signal.aborted) return;
        if (ttl <= 0) return lose("etcd reports the lease expired or revoked");
        this.noteSuccess();
        lastOk = attemptAt;
        nextAt = attemptAt + interval;
      } catch (err) {
        if (signal.aborted) return;
        this.noteFailure(err);
        // etcd renewed the lease no later than our last successful request was sent.
        if (Date.now() - lastOk >= this.ttlMs) return lose(`etcd unreachable for longer than the lease TTL (${this.ttlMs / 1000} s)`);
        nextAt = Date.now() + Math.min(interval, 500);
      }
    }
  }

  /**
   * Watches the key so a hand deletion or overwrite is noticed at once rather
   * than never (keepalives succeed on a lease that no longer holds the key).
   * After a broken watch it re-reads the key before watching again.
   */
  private async watchOwnKey(hold: Hold, signal: AbortSignal, lose: (reason: string) => void): Promise<void> {
    const { client, key, callTimeoutMs } = this.options;
    const backoff = new Backoff({ initialMs: 200, maxMs: 2000 });
    let from = hold.revision + 1n;
    while (!signal.aborted) {
      const watch = openWatch(client, { key: Buffer.from(key), startRevision: from, createTimeoutMs: callTimeoutMs }, {
        onCreated: () => backoff.reset(),
        onEvents: (events) => {
          for (const event of events) {
            if (event.type === "Delete") return lose("the key was deleted");
            if (event.kv.lease !== hold.leaseId) return lose("the key was overwritten by another writer");
          }
        },
      });
      const onAbort = () => watch.stop();
      signal.addEventListener("abort", onAbort, { once: true });
      await watch.ended;
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) return;
      await sleep(backoff.next(), signal);
      // Catch up by reading the key: it may have changed while we were not watching.
      try {
        const res = await client.kv.range({ key: Buffer.from(key) });
        if (signal.aborted) return;
        const kv = res.kvs[0];
        if (!kv) return lose("the key was deleted");
        if (kv.lease !== hold.leaseId) return lose("the key was overwritten by another writer");
        from = BigInt(res.header.revision) + 1n;
      } catch {
        // Unreachable: the keepalive loop tracks that; try again after the backoff.
      }
    }
  }

  private setState(state: KeeperState, detail: { reason?: string; leaseId?: string }): void {
    if (state === this.currentState) return;
    const previous = this.currentState;
    this.currentState = state;
    const { logger, key } = this.options;
    const [service = "", id = ""] = key.split("/").slice(-2);
    const metrics = registryMetrics();
    if (state === "registered") {
      logger.info(this.everRegistered ? "re-registered in etcd" : "registered in etcd", { key, leaseId: detail.leaseId, ttlSeconds: this.ttlMs / 1000 });
      if (this.everRegistered) metrics.countReregistration(service);
      metrics.setLeaseState(service, id, "held");
      this.everRegistered = true;
    } else if (state === "lost") {
      logger.warn("registration lost; re-registering", { key, reason: detail.reason });
      metrics.setLeaseState(service, id, "lost");
    } else if (state === "stopped") {
      if (previous !== "registering") logger.info("deregistered from etcd", { key });
      metrics.setLeaseState(service, id, "released");
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(state, detail);
      } catch (err) {
        logger.error("registration state listener threw", { key, err });
      }
    }
  }

  private noteFailure(err: unknown): void {
    this.failure = err instanceof Error ? err : new Error(String(err));
    if (this.abort.signal.aborted) return;
    const { logger, key } = this.options;
    const now = Date.now();
    if (this.unreachableSince === undefined) {
      this.unreachableSince = now;
      // One failed call is usually one lost member of a healthy cluster; the retry goes to another.
      logger.debug("etcd call failed; retrying", { key, reason: failureReason(err) });
    }
    // A warning means the registration is at risk: etcd has not answered for a keepalive interval
    // (a third of the TTL) while the key is held.
    if (!this.warnedUnreachable && this.currentState === "registered" && now - this.unreachableSince >= this.ttlMs / 3) {
      this.warnedUnreachable = true;
      const kind = etcdFailureKind(err);
      const message = kind === "access" ? "etcd refused access; will keep retrying" : kind === "tls" ? "TLS towards etcd failed; will keep retrying" : "etcd unreachable; will keep retrying";
      logger.warn(message, { key, downMs: now - this.unreachableSince, leaseExpiresInMs: Math.max(0, this.ttlMs - (now - this.unreachableSince)), reason: failureReason(err) });
    }
  }

  private noteSuccess(): void {
    if (this.unreachableSince === undefined) return;
    const fields = { key: this.options.key, downMs: Date.now() - this.unreachableSince };
    if (this.warnedUnreachable) this.options.logger.info("etcd reachable again", fields);
    else this.options.logger.debug("etcd reachable again", fields);
    this.unreachableSince = undefined;
    this.warnedUnreachable = false;
  }

  private async revokeCurrent(): Promise<void> {
    const id = this.lease;
    this.lease = undefined;
    if (id === undefined) return;
    try {
      await this.options.client.leaseClient.leaseRevoke({ ID: id });
    } catch (err) {
      this.options.logger.warn("could not revoke the lease; the key expires within its TTL", { key: this.options.key, reason: failureReason(err) });
    }
  }

  private revokeQuietly(id: string): void {
    this.options.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
  }
}

/** One keepalive round trip; resolves with the TTL etcd reports (≤ 0: the lease is gone). */
async function keepAliveOnce(client: Etcd3, leaseId: string, timeoutMs: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive(deadlineIn(timeoutMs));
  return new Promise<number>((resolve, reject) => {
    // end() rather than cancel(): a cancelled stream looks like a failed host to etcd3.
    stream.on("data", (res: { TTL: string }) => {
      resolve(Number(res.TTL));
      stream.end();
    });
    stream.on("error", reject);
    stream.on("end", () => reject(new Error("etcd ended the keepalive stream without an answer")));
    stream.write({ ID: leaseId });
  });
}
