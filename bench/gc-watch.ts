/**
 * Garbage-collection pauses of this worker process, between two reads: how many, how long in
 * all, the longest, and how many were scavenges and mark-compacts. A p99 latency at high
 * concurrency is often set by a few pauses.
 */
import { constants, PerformanceObserver } from "node:perf_hooks";

export interface GcStats {
  count: number;
  totalMs: number;
  maxMs: number;
  /** Young-generation collections. */
  scavenges: number;
  /** Full collections. */
  markCompacts: number;
}

const fresh = (): GcStats => ({ count: 0, totalMs: 0, maxMs: 0, scavenges: 0, markCompacts: 0 });
let stats = fresh();
let observer: PerformanceObserver | undefined;

/** Starts watching (idempotent). */
export function watchGc(): void {
  if (observer) return;
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      stats.count++;
      stats.totalMs += entry.duration;
      if (entry.duration > stats.maxMs) stats.maxMs = entry.duration;
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) stats.scavenges++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) stats.markCompacts++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
}

/** The pauses since the last call, and starts counting afresh. */
export function takeGcStats(): GcStats {
  const taken = stats;
  stats = fresh();
  return taken;
}
