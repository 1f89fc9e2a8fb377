/**
 * One etcd watch on its own gRPC stream, reduced to "events arrive, then it
 * ends for a reason". The callers (discovery, lease keeper) own recovery; etcd3's
 * own watch manager would resume silently from an old revision, and we need
 * to see compaction and disconnection to resync correctly.
 */
import type { Etcd3, IEvent, IWatchResponse } from "etcd3";

/** Why a watch ended. */
export type WatchEnd =
  | { kind: "compacted"; compactRevision: bigint }
  | { kind: "failed"; error: Error }
  | { kind: "stopped" };

export interface WatchRequest {
  key: Buffer;
  /** Exclusive end of the watched range; absent watches `key` only. */
  rangeEnd?: Buffer;
  /** First revision to deliver. */
  startRevision: bigint;
  /** The create handshake must finish within this (a hung member otherwise looks like a quiet key). */
  createTimeoutMs: number;
}

export interface WatchStream {
  /** Resolves once, when the watch ends for any reason. Never rejects. */
  readonly ended: Promise<WatchEnd>;
  stop(): void;
}

/**
 * Opens a watch. `onCreated` runs when etcd confirms it; `onEvents` gets each
 * response's events with the response revision.
 */
export function openWatch(
  client: Etcd3,
  request: WatchRequest,
  handlers: { onEvents(events: IEvent[], revision: bigint): void; onCreated?(): void },
): WatchStream {
  let settled = false;
  let cancel: (() => void) | undefined;
  let resolveEnd!: (end: WatchEnd) => void;
  const ended = new Promise<WatchEnd>((resolve) => (resolveEnd = resolve));
  const finish = (end: WatchEnd) => {
    if (settled) return;
    settled = true;
    clearTimeout(createTimer);
    cancel?.();
    resolveEnd(end);
  };
  const createTimer = setTimeout(
    () => finish({ kind: "failed", error: new Error(`etcd did not confirm the watch within ${request.createTimeoutMs} ms`) }),
    request.createTimeoutMs,
  );
  createTimer.unref();

  client.watchClient.watch().then(
    (stream) => {
      cancel = () => {
        try {
          // end() first: etcd3 treats an error on a still-writable stream (our own
          // CANCELLED included) as a failed host and tears down its connections.
          stream.end();
          stream.cancel();
        } catch {
          // already closed
        }
      };
      if (settled) return cancel();
      // Listeners stay attached after we settle: a cancelled stream still emits "error".
      stream.on("error", (error: Error) => finish({ kind: "failed", error }));
      stream.on("end", () => finish({ kind: "failed", error: new Error("etcd closed the watch stream") }));
      stream.on("data", (res: IWatchResponse) => {
        if (settled) return;
        if (res.compact_revision && res.compact_revision !== "0") {
          return finish({ kind: "compacted", compactRevision: BigInt(res.compact_revision) });
        }
        if (res.canceled) {
          return finish({ kind: "failed", error: new Error(`etcd cancelled the watch: ${res.cancel_reason || "no reason given"}`) });
        }
        if (res.created) {
          clearTimeout(createTimer);
          handlers.onCreated?.();
        }
        if (res.events.length > 0) handlers.onEvents(res.events, BigInt(res.header.revision));
      });
      stream.write({
        create_request: { key: request.key, range_end: request.rangeEnd, start_revision: request.startRevision.toString() },
      });
    },
    (error: unknown) => finish({ kind: "failed", error: error instanceof Error ? error : new Error(String(error)) }),
  );

  return { ended, stop: () => finish({ kind: "stopped" }) };
}

/** The range end that makes a watch or range cover every key starting with `prefix`. */
export function prefixEnd(prefix: string | Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
