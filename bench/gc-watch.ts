/**
 * Garbage-collection pauses of this worker process, between two reads: how many, how long in
 * all, and the longest. A p99 latency at high concurrency is often set by a few pauses.
 */
import { PerformanceObserver } from "node:perf_hooks";

export interface GcStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

let stats: GcStats = { count: 0, totalMs: 0, maxMs: 0 };
let observer: PerformanceObserver | undefined;

/** Starts watching (idempotent). */
export function watchGc(): void {
  if (observer) return;
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      stats.count++;
      stats.totalMs += entry.duration;
      if (entry.duration > stats.maxMs) stats.maxMs = entry.duration;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
}

/** The pauses since the last call, and starts counting afresh. */
export function takeGcStats(): GcStats {
  const taken = stats;
  stats = { count: 0, totalMs: 0, maxMs: 0 };
  return taken;
}
