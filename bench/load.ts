/**
 * Load generators run inside client workers. A closed loop keeps `concurrency` calls in
 * flight; only what completes inside the measured window counts, so the warm-up and the
 * drain at the end never dilute a result.
 */
import { performance } from "node:perf_hooks";
import { percentile } from "./stats";

export interface Window {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
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
  const start = performance.now() + window.warmupMs;
  const end = start + window.durationMs;
  let latencies = new Float64Array(16_384);
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  let seq = 0;
  const loop = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      let failed = false;
      try {
        await call(seq++);
      } catch (err) {
        failed = true;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      const t1 = performance.now();
      if (t1 < start || t1 > end) continue;
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
    rate: count / (window.durationMs / 1000),
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
  let totalMessages = 0;
  const start = performance.now() + window.warmupMs;
  const end = start + window.durationMs;
  let messages = 0;
  let streams = 0;
  let errors = 0;
  let firstError: string | undefined;
  const onMessage = () => {
    totalMessages++;
    const t = performance.now();
    if (t >= start && t <= end) messages++;
  };
  const loop = async () => {
    while (performance.now() < end) {
      try {
        await open(onMessage);
        streams++;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: window.concurrency }, loop));
  const cpu = process.cpuUsage(cpuBefore);
  return { totalMessages, cpuMicros: cpu.user + cpu.system, messages, rate: messages / (window.durationMs / 1000), streams, errors, ...(firstError === undefined ? {} : { firstError }) };
}
