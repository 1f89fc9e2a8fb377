/** Polling and event helpers for specs: wait for a condition, never for a fixed time. */

/** Resolves once `check` returns a truthy value (which it returns); rejects after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 25, what = "condition" }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Collects values pushed by a callback, as a queue: `next()` hands out recorded
 * values in order (waiting if none is unread), so a value that arrives before
 * the spec asks for it is never missed.
 */
export class Recorder<T> {
  readonly values: T[] = [];
  private cursor = 0;
  private waiter: (() => void) | undefined;

  push = (value: T): void => {
    this.values.push(value);
    this.waiter?.();
  };

  /** The latest value, if any. */
  get last(): T | undefined {
    return this.values.at(-1);
  }

  /** The first unread value matching `match` (skipping unread ones that do not), waiting up to `timeoutMs`. */
  async next(match: (v: T) => boolean = () => true, { timeoutMs = 5000, what = "value" } = {}): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.values.length) {
        const value = this.values[this.cursor++];
        if (match(value)) return value;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(this.last)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }
}
