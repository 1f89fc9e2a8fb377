/**
 * A millisecond clock that every process on the machine shares: `process.hrtime` reads
 * CLOCK_MONOTONIC on Linux, so a timestamp taken in a worker can be subtracted from one
 * taken in the orchestrator. `performance.now()` cannot (its origin is per process).
 */
export function sharedNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `test` every `everyMs` until it returns a value other than `undefined`, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, test: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await test();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
