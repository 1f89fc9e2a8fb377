/**
 * Logs refused connections without letting a scan flood the log: the first few refusals of
 * each window are logged one by one (reason and peer), the rest are counted and summed up in
 * one line, by reason, when the window ends.
 */
import type { Logger } from "./logger";

/** Refusals logged one by one per window; the rest go into the window's summary. */
export const REFUSALS_LOGGED_PER_WINDOW = 5;
export const REFUSAL_WINDOW_MS = 10_000;

export interface Refusal {
  /** What was refused, as the log line's message ("refused a TLS handshake"). */
  what: string;
  /** Why, in words ("client certificate not signed by a trusted CA"). */
  reason: string;
  /** `address:port` of the peer, when known. */
  peer?: string;
  /** Extra fields for the individual line (certificate subject, error code). */
  fields?: Record<string, unknown>;
}

export class RefusalLog {
  private logged = 0;
  private readonly unlogged = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly perWindow = REFUSALS_LOGGED_PER_WINDOW,
    private readonly windowMs = REFUSAL_WINDOW_MS,
    /** What the summary line counts ("connections", "requests"). */
    private readonly things = "connections",
  ) {}

  /** Records one refusal: logged at warn while the window has room, counted otherwise. */
  note(refusal: Refusal): void {
    this.timer ??= setTimeout(() => this.flush(), this.windowMs).unref();
    if (this.logged < this.perWindow) {
      this.logged++;
      this.logger.warn(refusal.what, { ...(refusal.peer === undefined ? {} : { peer: refusal.peer }), reason: refusal.reason, ...refusal.fields });
      return;
    }
    const key = `${refusal.what}: ${refusal.reason}`;
    this.unlogged.set(key, (this.unlogged.get(key) ?? 0) + 1);
  }

  /** Ends the window: one summary line if refusals went unlogged. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.logged = 0;
    if (this.unlogged.size === 0) return;
    let total = 0;
    const byReason: Record<string, number> = {};
    for (const [key, count] of this.unlogged) {
      total += count;
      byReason[key] = count;
    }
    this.unlogged.clear();
    this.logger.warn(`refused ${total} more ${this.things} in the last ${this.windowMs / 1000} s`, { byReason });
  }
}
