/**
 * Jittered exponential backoff for the registry's retry loops. The loops retry
 * forever, so the cap stays at a few seconds: after etcd comes back, every
 * client re-registers within about one cap, and the jitter spreads them out.
 */

export interface BackoffOptions {
  /** First delay, in milliseconds. Default 100. */
  initialMs?: number;
  /** Largest delay, in milliseconds. Default 3000. */
  maxMs?: number;
}

/** Delays growing ×2 per attempt up to a cap, each drawn uniformly from [d/2, d]. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 3000;
  }

  /** The delay before the next attempt; each call grows the following one. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects; the timer does not hold the process open. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener("abort", done, { once: true });
  });
}
