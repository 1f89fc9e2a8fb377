/**
 * Warns about registry entries that do not decode: once per key and revision,
 * so a bad entry is reported when it appears or changes, not on every relist.
 * A burst (say thousands of junk keys) logs a few examples and a summary. The
 * examples and summaries are also capped per time window: junk written one key
 * at a time reaches a watcher as one batch per key, and would otherwise log a
 * line per key.
 */
import type { Logger } from "../../runtime/logger";

/** Individual warnings per batch before the rest are only counted. */
const EXAMPLES_PER_BATCH = 5;
/** Individual warnings per window, across batches. */
const EXAMPLES_PER_WINDOW = 20;
/** The window for examples, and the shortest gap between two summaries. */
const WINDOW_MS = 10_000;

export class GarbageReporter {
  private readonly seen = new Map<string, string>();
  private inBatch = 0;
  private inWindow = 0;
  private windowStart = 0;
  private suppressed = 0;
  private lastSummaryAt = -Infinity;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly logger: Logger) {}

  /** Records a bad entry; warns unless this key+revision was reported before or the caps are reached. */
  note(key: string, modRevision: string, reason: string, valueBytes: number): void {
    if (this.seen.get(key) === modRevision) return;
    this.seen.set(key, modRevision);
    const now = Date.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inBatch < EXAMPLES_PER_BATCH && this.inWindow < EXAMPLES_PER_WINDOW) {
      this.inBatch++;
      this.inWindow++;
      this.logger.warn("skipping invalid registry entry", { key, revision: modRevision, reason, valueBytes });
    } else {
      this.suppressed++;
    }
  }

  /** The key is gone (deleted, or valid again): a future bad value is news. */
  forget(key: string): void {
    this.seen.delete(key);
  }

  /** After a full read of `prefix`: forget keys under it that were not bad in that read. */
  reconcile(prefix: string, badKeys: ReadonlySet<string>): void {
    for (const key of this.seen.keys()) if (key.startsWith(prefix) && !badKeys.has(key)) this.seen.delete(key);
  }

  /** Ends a batch (one list or one watch response): summarises what was not logged one by one, at most once per window. */
  flush(): void {
    this.inBatch = 0;
    if (this.suppressed === 0 || this.summaryTimer) return;
    const wait = this.lastSummaryAt + WINDOW_MS - Date.now();
    if (wait <= 0) return this.summarize();
    this.summaryTimer = setTimeout(() => this.summarize(), wait);
    this.summaryTimer.unref();
  }

  private summarize(): void {
    this.summaryTimer = undefined;
    if (this.suppressed === 0) return;
    this.logger.warn(`skipping ${this.suppressed} more invalid registry entries`, { count: this.suppressed });
    this.suppressed = 0;
    this.lastSummaryAt = Date.now();
  }
}
