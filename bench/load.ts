/**
 * Load generators run inside client workers. A closed loop keeps `concurrency` calls in
 * flight; only what completes inside the measured window counts, so the warm-up and the
 * drain at the end never dilute a result.
 *
 * Warm-up is counted in calls, not only in time: the measured window opens once `warmupMs`
 * has passed *and* every loop has completed at least one call (a cold burst of 100 calls
 * on a slow machine can take longer than any fixed warm-up). The window closes after
 * `durationMs`, or later if nothing has completed yet: a slow machine gives a longer window
 * and a lower rate, never an empty result. Rates divide by the window actually measured.
 */
import { performance } from "node:perf_hooks";
import { percentile } from "./stats";

export interface Window {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

/** However slow the machine, a window ends this long after it was due (errors only, say). */
const OVERRUN_LIMIT_MS = 60_000;

/**
 * The shared clock of one run's loops: when the measured window opens and closes. Each loop
 * reports its first completion (`warmed`); the window opens when all have and the time-based
 * warm-up is over.
 */
class WindowClock {
  start = Infinity;
  end = Infinity;
  private warmedLoops = 0;
  private readonly warmupUntil: number;

  constructor(private readonly window: Window) {
    this.warmupUntil = performance.now() + window.warmupMs;
  }

  /** A loop completed its first call (or message). */
  warmed(now: number): void {
    this.warmedLoops++;
    this.maybeOpen(now);
  }

  /** Called on every completion: opens the window once the time-based warm-up is over too. */
  maybeOpen(now: number): void {
    if (this.start !== Infinity || this.warmedLoops < this.window.concurrency || now < this.warmupUntil) return;
    this.start = now;
    this.end = now + this.window.durationMs;
  }

  inWindow(t: number): boolean {
    return t >= this.start && t <= this.end;
  }

  /** Whether a loop may start another call: the window is over and something was counted, or it has overrun its limit. */
  done(now: number, counted: number): boolean {
    if (now < this.end) return false;
    return counted > 0 || now > this.end + OVERRUN_LIMIT_MS;
  }

  /** Seconds actually measured: from the window's opening to its end or the last counted completion. */
  seconds(lastCounted: number): number {
    if (this.start === Infinity) return this.window.durationMs / 1000;
    return Math.max(this.end, lastCounted) - this.start > 0 ? (Math.max(this.end, lastCounted) - this.start) / 1000 : this.window.durationMs / 1000;
  }
}

export interface UnaryResult {
  /** Calls completed inside the window. */
  calls: number;
  errors: number;
  /** Completed calls per second. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** Every call made, warm-up and drain included (to divide CPU time by). */
  totalCalls: number;
  /** CPU time (user + system) of this process over the whole run, in µs. */
  cpuMicros: number;
  firstError?: string;
}

/** Runs `call` in `concurrency` loops; call `i` gets its sequence number (for per-call keys). */
export async function closedLoop(call: (i: number) => Promise<unknown>, window: Window): Promise<UnaryResult> {
  const cpuBefore = process.cpuUsage();
  const clock = new WindowClock(window);
  let latencies = new Float64Array(16_384);
  let count = 0;
  let errors = 0;
  let lastCounted = 0;
  let firstError: string | undefined;
  let seq = 0;
  const loop = async () => {
    let warmed = false;
    while (!clock.done(performance.now(), count + errors)) {
      const t0 = performance.now();
      let failed = false;
      try {
        await call(seq++);
      } catch (err) {
        failed = true;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      const t1 = performance.now();
      if (!warmed) {
        warmed = true;
        clock.warmed(t1);
      } else clock.maybeOpen(t1);
      if (!clock.inWindow(t1) && !(t1 > clock.end && count + errors === 0)) continue;
      lastCounted = t1;
      if (failed) {
        errors++;
        continue;
      }
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = t1 - t0;
    }
  };
  await Promise.all(Array.from({ length: window.concurrency }, loop));
  const cpu = process.cpuUsage(cpuBefore);
  const measured = latencies.subarray(0, count);
  return {
    totalCalls: seq,
    cpuMicros: cpu.user + cpu.system,
    calls: count,
    errors,
    rate: count / clock.seconds(lastCounted),
    p50Ms: percentile(measured, 50),
    p99Ms: percentile(measured, 99),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

export interface StreamResult {
  /** Messages received inside the window. */
  messages: number;
  /** Every message received, warm-up and drain included (to divide CPU time by). */
  totalMessages: number;
  /** CPU time (user + system) of this process over the whole run, in µs. */
  cpuMicros: number;
  /** Messages per second. */
  rate: number;
  streams: number;
  errors: number;
  firstError?: string;
}

/**
 * Runs `concurrency` loops that each open a server stream of `perStream` messages and read
 * it to the end; `onMessage` passed to `open` must be called once per message received.
 */
export async function streamLoop(open: (onMessage: () => void) => Promise<void>, window: Window): Promise<StreamResult> {
  const cpuBefore = process.cpuUsage();
  const clock = new WindowClock(window);
  let totalMessages = 0;
  let messages = 0;
  let lastCounted = 0;
  let streams = 0;
  let errors = 0;
  let firstError: string | undefined;
  const count = (t: number) => {
    if (clock.inWindow(t) || (t > clock.end && messages + errors === 0)) {
      lastCounted = t;
      return true;
    }
    return false;
  };
  const loop = async () => {
    let warmed = false;
    const warm = () => {
      const t = performance.now();
      if (!warmed) {
        warmed = true;
        clock.warmed(t);
      } else clock.maybeOpen(t);
      return t;
    };
    const onMessage = () => {
      totalMessages++;
      if (count(warm())) messages++;
    };
    while (!clock.done(performance.now(), messages + errors)) {
      try {
        await open(onMessage);
        streams++;
        warm();
      } catch (err) {
        firstError ??= err instanceof Error ? err.message : String(err);
        if (count(warm())) errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: window.concurrency }, loop));
  const cpu = process.cpuUsage(cpuBefore);
  return { totalMessages, cpuMicros: cpu.user + cpu.system, messages, rate: messages / clock.seconds(lastCounted), streams, errors, ...(firstError === undefined ? {} : { firstError }) };
}

/** What a fixed amount of work cost this process: for instruction counts, where time does not matter. */
export interface FixedResult {
  /** Calls (or messages) completed. */
  done: number;
  errors: number;
  cpuMicros: number;
  firstError?: string;
}

/** Makes exactly `total` calls, `concurrency` at a time. */
export async function fixedCalls(call: (i: number) => Promise<unknown>, total: number, concurrency: number): Promise<FixedResult> {
  const cpuBefore = process.cpuUsage();
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async () => {
    while (next < total) {
      const i = next++;
      try {
        await call(i);
        done++;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, loop));
  const cpu = process.cpuUsage(cpuBefore);
  return { done, errors, cpuMicros: cpu.user + cpu.system, ...(firstError === undefined ? {} : { firstError }) };
}

/** Opens exactly `total` streams, `concurrency` at a time; `done` counts the messages received. */
export async function fixedStreams(open: (onMessage: () => void) => Promise<void>, total: number, concurrency: number): Promise<FixedResult> {
  let messages = 0;
  const onMessage = () => void messages++;
  const r = await fixedCalls(() => open(onMessage), total, concurrency);
  return { ...r, done: messages };
}
