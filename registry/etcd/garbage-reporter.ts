/**
 * Warns about registry entries that do not decode: once per key and revision,
 * so a bad entry is reported when it appears or changes, not on every relist.
 * A burst (say thousands of junk keys) logs a few examples and one summary.
 */
import type { Logger } from "../../runtime/logger";

/** Individual warnings per batch before the rest are only counted. */
const EXAMPLES_PER_BATCH = 5;

export class GarbageReporter {
  private readonly seen = new Map<string, string>();
  private logged = 0;
  private suppressed = 0;

  constructor(private readonly logger: Logger) {}

  /** Records a bad entry; warns unless this key+revision was reported before. */
  note(key: string, modRevision: string, reason: string, valueBytes: number): void {
    if (this.seen.get(key) === modRevision) return;
    this.seen.set(key, modRevision);
    if (this.logged < EXAMPLES_PER_BATCH) {
      this.logged++;
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

  /** Ends a batch (one list or one watch response): summarises what was not logged one by one. */
  flush(): void {
    if (this.suppressed > 0) {
      this.logger.warn(`skipping ${this.suppressed} more invalid registry entries`, { count: this.suppressed });
    }
    this.logged = 0;
    this.suppressed = 0;
  }
}
