/**
 * Follows one application's config in etcd for one instance: read the
 * pointers at revision R, watch the prefix from R+1, and whenever the version
 * this instance should run changes (the `current` pointer, or a gray rule
 * matching its labels), fetch that version, decode it and hand it on.
 *
 * A version that fails to decode is rejected, once, with a log line, and the
 * last good one stays. Losing etcd keeps the last good version; the watch then
 * resumes from the last applied revision, so changes made in the meantime are
 * replayed in order. If they were compacted away, the pointers are re-read.
 */
import type { Etcd3, IEvent } from "etcd3";
import { Backoff } from "../registry/etcd/backoff";
import { runListWatch } from "../registry/etcd/list-watch";
import type { Logger } from "../runtime/logger";
import { GarbageLog } from "./garbage";
import { classifyKey, type ConfigKeys } from "./keys";
import { matchesLabels, type Labels } from "./labels";
import { decodeCurrent, decodeGray, decodeRecord, type GrayRule, type VersionRecord } from "./records";
import { readSnapshot } from "./snapshot";
import type { ConfigIssue } from "./validate";

/** Turns a stored version into what the instance uses, or says why it cannot. */
export type VersionDecoder<V> = (record: VersionRecord) => { ok: true; value: V; canonical: string } | { ok: false; issues: readonly ConfigIssue[] };

/** A version in force. */
export interface Applied<V> {
  readonly record: VersionRecord;
  readonly value: V;
  /** Canonical JSON text, to tell a changed value from a new version of the same value. */
  readonly canonical: string;
}

export interface ConfigWatcherOptions<V> {
  client: Etcd3;
  keys: ConfigKeys;
  labels: Labels;
  decode: VersionDecoder<V>;
  callTimeoutMs: number;
  logger: Logger;
  /** A new version is in force (`prev` is undefined for the first). */
  onApplied(next: Applied<V>, prev: Applied<V> | undefined): void;
}

/** Version records kept from watch events, so a pointer move needs no extra read. */
const RECENT_VERSIONS = 8;

export class ConfigWatcher<V> {
  private readonly abort = new AbortController();
  private readonly backoff = new Backoff({ initialMs: 100, maxMs: 2000 });
  private readonly garbage: GarbageLog;
  private readonly recent = new Map<number, Buffer>();
  private readonly rejected = new Set<number>();
  /** Highest revision whose changes are applied to the pointers below. */
  private revision = 0n;
  private synced = false;
  private current: number | undefined;
  /** Why the `current` pointer could not be read at the last sync, if it could not. */
  private currentProblem: string | undefined;
  private gray: GrayRule | undefined;
  private applied: Applied<V> | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private outageSince: number | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: ConfigWatcherOptions<V>) {
    this.garbage = new GarbageLog(o.logger);
  }

  /** The version in force, if any. */
  get state(): Applied<V> | undefined {
    return this.applied;
  }

  /** True once the pointers have been read from etcd at least once. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Whether anything is stored: the `current` pointer or a gray rule for this instance. */
  get hasTarget(): boolean {
    return this.target() !== undefined;
  }

  /** Why the `current` pointer was unreadable at the last sync, if it was. */
  get unreadablePointer(): string | undefined {
    return this.currentProblem;
  }

  /** Seeds the version in force from elsewhere (a cache file, defaults) before the first sync. */
  seed(applied: Applied<V>): void {
    this.applied = applied;
  }

  /**
   * Reads the pointers and brings the instance's version in line; throws if
   * etcd cannot be read. Returns the decode problems of the target version, if
   * it was rejected.
   */
  async sync(): Promise<readonly ConfigIssue[] | undefined> {
    const snap = await readSnapshot(this.o.client, this.o.keys);
    this.revision = snap.revision;
    this.synced = true;
    this.current = undefined;
    this.currentProblem = undefined;
    if (snap.current) {
      if (snap.current.ok) this.current = snap.current.value;
      else {
        this.currentProblem = snap.current.reason;
        this.garbage.note(this.o.keys.current, snap.current.modRevision, snap.current.reason);
      }
    }
    this.gray = undefined;
    if (snap.gray) {
      if (snap.gray.ok) this.gray = snap.gray.value;
      else this.garbage.note(this.o.keys.gray, snap.gray.modRevision, snap.gray.reason);
    }
    return this.serial(() => this.reconcileNow());
  }

  /** Starts following changes in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    if (!this.abort.signal.aborted) this.abort.abort();
    clearTimeout(this.retryTimer);
    await this.loop;
    await this.reconciling;
  }

  private run(): Promise<void> {
    return runListWatch(
      {
        client: this.o.client,
        prefix: this.o.keys.prefix,
        callTimeoutMs: this.o.callTimeoutMs,
        backoff: this.backoff,
        sync: async () => {
          await this.sync();
          this.noteRecovered();
        },
        revision: () => this.revision,
        apply: (events) => this.apply(events),
        onWatching: () => {
          this.noteRecovered();
          this.kick(); // a fetch that failed during the outage is due again
        },
        onFailure: (err) => this.noteFailure(err),
        onCompacted: (fromRevision, compactRevision) =>
          this.o.logger.info("config watch fell behind etcd compaction; re-reading", {
            fromRevision: String(fromRevision),
            compactRevision: String(compactRevision),
          }),
      },
      this.abort.signal,
      this.synced,
    );
  }

  private apply(events: IEvent[]): void {
    const base = this.revision;
    for (const event of events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= base) continue; // already applied (a resumed watch may overlap)
      if (revision > this.revision) this.revision = revision;
      const key = event.kv.key.toString();
      const kind = classifyKey(this.o.keys, key);
      const deleted = event.type === "Delete";
      switch (kind.kind) {
        case "current": {
          if (deleted) {
            this.o.logger.warn("the config's current pointer was deleted; keeping the version in force", { version: this.applied?.record.version });
            this.current = undefined;
            break;
          }
          const d = decodeCurrent(event.kv.value);
          if (d.ok) this.current = d.value;
          else this.garbage.note(key, event.kv.mod_revision, d.reason);
          break;
        }
        case "gray": {
          const d = deleted ? undefined : decodeGray(event.kv.value);
          if (d && !d.ok) this.garbage.note(key, event.kv.mod_revision, `${d.reason}; ignoring the gray release`);
          this.gray = d?.ok ? d.value : undefined;
          break;
        }
        case "version":
          if (deleted) this.recent.delete(kind.version);
          else this.remember(kind.version, event.kv.value);
          break;
        case "unknown":
          if (!deleted) this.garbage.note(key, event.kv.mod_revision, "not part of the config layout");
          break;
      }
    }
    this.kick();
  }

  private remember(version: number, value: Buffer): void {
    this.recent.set(version, value);
    while (this.recent.size > RECENT_VERSIONS) this.recent.delete(this.recent.keys().next().value as number);
  }

  /** The version this instance should run. */
  private target(): number | undefined {
    if (this.gray && matchesLabels(this.gray.match, this.o.labels)) return this.gray.version;
    return this.current;
  }

  /** Runs `task` after every queued reconcile: one fetch-and-apply at a time, in order. */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.reconciling.then(task);
    this.reconciling = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Queues a reconcile; on an etcd error, retries after a backoff. */
  private kick(): void {
    void this.serial(async () => {
      if (this.abort.signal.aborted) return;
      try {
        await this.reconcileNow();
      } catch (err) {
        this.o.logger.debug("cannot fetch the config version yet; will retry", { err });
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.kick(), this.backoff.next());
        this.retryTimer.unref();
      }
    });
  }

  private async reconcileNow(): Promise<readonly ConfigIssue[] | undefined> {
    for (;;) {
      const target = this.target();
      if (target === undefined || target === this.applied?.record.version) return undefined;
      if (this.rejected.has(target)) return undefined;
      const key = this.o.keys.version(target);
      let raw = this.recent.get(target);
      let modRevision = "0";
      if (!raw) {
        const res = await this.o.client.kv.range({ key: Buffer.from(key) });
        raw = res.kvs[0]?.value;
        modRevision = res.kvs[0]?.mod_revision ?? "0";
      }
      if (this.target() !== target) continue; // moved while fetching
      const issues = this.install(target, key, raw, modRevision);
      if (issues) return issues;
    }
  }

  /** Decodes and applies one version; returns its problems if it is rejected. */
  private install(version: number, key: string, raw: Buffer | undefined, modRevision: string): readonly ConfigIssue[] | undefined {
    const keeping = this.applied ? { keepingVersion: this.applied.record.version } : {};
    if (!raw) {
      this.rejected.add(version);
      this.o.logger.error(`config version ${version} does not exist; keeping the config in force`, { key, ...keeping });
      return [{ path: "", message: `version ${version} does not exist` }];
    }
    const record = decodeRecord(raw, version);
    if (!record.ok) {
      this.rejected.add(version);
      this.garbage.note(key, modRevision, record.reason);
      return [{ path: "", message: record.reason }];
    }
    const decoded = this.o.decode(record.value);
    if (!decoded.ok) {
      this.rejected.add(version);
      const detail = decoded.issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ");
      this.o.logger.error(`rejected config version ${version}: ${detail}`, { version, issues: decoded.issues, ...keeping });
      return decoded.issues;
    }
    const prev = this.applied;
    this.applied = { record: record.value, value: decoded.value, canonical: decoded.canonical };
    this.o.onApplied(this.applied, prev);
    return undefined;
  }

  private noteFailure(err: unknown): void {
    if (this.outageSince !== undefined) return;
    this.outageSince = Date.now();
    this.o.logger.warn("lost contact with etcd; keeping the config in force", {
      version: this.applied?.record.version,
      err: err instanceof Error ? err : new Error(String(err)),
    });
  }

  private noteRecovered(): void {
    if (this.outageSince === undefined) return;
    this.o.logger.info("etcd reachable again; config watch resumed", { downMs: Date.now() - this.outageSince, fromRevision: String(this.revision + 1n) });
    this.outageSince = undefined;
  }
}
