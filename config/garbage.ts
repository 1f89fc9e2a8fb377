/**
 * Warns about keys and values under a config prefix that are not part of the
 * layout or do not decode: once per key and revision, so a bad entry is
 * reported when it appears or changes, not on every resync.
 */
import type { Logger } from "../runtime/logger";

export class GarbageLog {
  private readonly seen = new Map<string, string>();

  constructor(private readonly logger: Logger) {}

  note(key: string, modRevision: string, reason: string): void {
    if (this.seen.get(key) === modRevision) return;
    if (this.seen.size > 10_000) this.seen.clear(); // bounded even under a flood of junk keys
    this.seen.set(key, modRevision);
    this.logger.warn("ignoring invalid entry under the config prefix", { key, revision: modRevision, reason });
  }
}
