/**
 * Token buckets in this process, one per (route, client key). A bucket is
 * refilled lazily from the clock when it is touched, so idle keys cost
 * nothing; the table is bounded, dropping the longest-untouched buckets
 * first (a dropped bucket comes back full, which errs on admitting).
 */

/** What a limiter answers for one request. */
export interface LimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until a request would be admitted again (0 when allowed). */
  readonly retryAfterSeconds: number;
  /** Seconds until the bucket/window is full again. */
  readonly resetSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class LocalLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token from bucket `key` (rate per second, capacity `burst`). */
  take(key: string, ratePerSecond: number, burst: number): LimitDecision {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * ratePerSecond);
      b.at = now;
      // Re-insert: Map order is then least-recently-used first.
      this.buckets.delete(key);
      this.buckets.set(key, b);
    } else {
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
      if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    const resetSeconds = Math.ceil((burst - b.tokens) / ratePerSecond);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, limit: burst, remaining: Math.floor(b.tokens), retryAfterSeconds: 0, resetSeconds: Math.ceil((burst - b.tokens) / ratePerSecond) };
    }
    return { allowed: false, limit: burst, remaining: 0, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / ratePerSecond)), resetSeconds };
  }

  get size(): number {
    return this.buckets.size;
  }
}
