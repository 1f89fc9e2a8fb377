/**
 * The list-then-watch loop shared by discovery (a service's instances) and the config
 * center (an app's config keys): read the prefix at revision R, watch from R + 1, and on
 * compaction read again; on any other failure back off and resume the watch after the last
 * applied revision, so no change is missed and nothing is applied twice.
 */
import type { Etcd3, IEvent } from "etcd3";
import { sleep, type Backoff } from "./backoff";
import { openWatch, prefixEnd, type WatchEnd } from "./watch-stream";

/** A watch that stayed up this long counts as healthy: the next failure retries fast again. */
export const HEALTHY_WATCH_MS = 5000;

/** What {@link runListWatch} drives. */
export interface ListWatchTarget {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly callTimeoutMs: number;
  readonly backoff: Backoff;
  /** Reads the whole prefix and records its revision; throws when etcd cannot answer. */
  sync(): Promise<void>;
  /** The revision the applied state reflects; the watch resumes after it. */
  revision(): bigint;
  /** Applies one watch response's events (skipping revisions already applied). */
  apply(events: IEvent[]): void;
  /** etcd confirmed a watch: the connection is healthy again. */
  onWatching(): void;
  /** A read or a watch failed; the loop backs off and retries. */
  onFailure(err: unknown): void;
  /** The watch fell behind compaction; the loop reads the prefix again next. */
  onCompacted(fromRevision: bigint, compactRevision: bigint): void;
}

/**
 * Runs until `signal` fires. `synced` says whether the state is already current (a
 * restarted loop may resume its watch without reading the prefix again).
 */
export async function runListWatch(target: ListWatchTarget, signal: AbortSignal, synced = false): Promise<void> {
  let needSync = !synced;
  while (!signal.aborted) {
    if (needSync) {
      try {
        await target.sync();
        needSync = false;
      } catch (err) {
        if (signal.aborted) break;
        target.onFailure(err);
        await sleep(target.backoff.next(), signal);
        continue;
      }
    }
    const startedAt = Date.now();
    const end = await watchPrefix(target, target.revision() + 1n, signal);
    if (end.kind === "stopped") break;
    if (end.kind === "compacted") {
      target.onCompacted(target.revision() + 1n, end.compactRevision);
      needSync = true;
      continue;
    }
    target.onFailure(end.error);
    if (Date.now() - startedAt >= HEALTHY_WATCH_MS) target.backoff.reset();
    await sleep(target.backoff.next(), signal);
  }
}

function watchPrefix(target: ListWatchTarget, startRevision: bigint, signal: AbortSignal): Promise<WatchEnd> {
  // Stopped while the prefix was being read: an abort listener added now would never fire,
  // and the watch would outlive its owner (and keep the process alive).
  if (signal.aborted) return Promise.resolve({ kind: "stopped" });
  const watch = openWatch(
    target.client,
    { key: Buffer.from(target.prefix), rangeEnd: prefixEnd(target.prefix), startRevision, createTimeoutMs: target.callTimeoutMs },
    { onCreated: () => target.onWatching(), onEvents: (events) => target.apply(events) },
  );
  const onAbort = () => watch.stop();
  signal.addEventListener("abort", onAbort, { once: true });
  return watch.ended.finally(() => signal.removeEventListener("abort", onAbort));
}
