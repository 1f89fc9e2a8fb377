/**
 * Steady call load for fault specs: a fixed number of callers, each making one
 * `SayHello` after another at a paced rate, recording every outcome. A fault
 * spec starts the load, injects its fault, and asserts on what the load saw.
 */
import type { RpcError } from "protomesh";
import { stopAfterTest } from "../../helpers/leftovers";
import type { GreeterClient } from "../../../gen/examples/greeter/v1/greeter_protomesh";

export interface CallRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** The instance that answered (its `servedBy`), when the call succeeded. */
  servedBy?: string;
  /** Status code and message, when the call failed. */
  code?: number;
  message?: string;
}

export interface CallLoadOptions {
  /** Callers running at once (default 4). */
  concurrency?: number;
  /** Pause of each caller between two calls, in milliseconds (default 10): steady, not saturating. */
  pauseMs?: number;
  /** Deadline of each call (default 3000 ms). */
  deadlineMs?: number;
}

export interface CallLoad {
  readonly records: readonly CallRecord[];
  /** Calls started and not yet ended. */
  readonly inFlight: number;
  /** Records of failed calls so far. */
  failures(): CallRecord[];
  /** Calls that ended after `since`, per instance that answered them. */
  servedSince(since: number): Map<string, number>;
  /** Resolves once a call that started after now is answered by `instanceId`. */
  reaches(instanceId: string, timeoutMs?: number): Promise<number>;
  /** Stops calling and waits for calls in flight to end. */
  stop(): Promise<LoadSummary>;
}

export interface LoadSummary {
  calls: number;
  failed: number;
  /** Failure count per status code name. */
  codes: Record<string, number>;
  maxLatencyMs: number;
  durationMs: number;
}

/** Starts calling `client.sayHello` until `stop()`. */
export function startCallLoad(client: GreeterClient, options: CallLoadOptions = {}): CallLoad {
  const concurrency = options.concurrency ?? 4;
  const pauseMs = options.pauseMs ?? 10;
  const deadlineMs = options.deadlineMs ?? 3000;
  const records: CallRecord[] = [];
  const startedAt = Date.now();
  let running = true;
  let inFlight = 0;
  const waiters = new Set<() => void>();

  async function caller(n: number): Promise<void> {
    let i = 0;
    while (running) {
      const record: CallRecord = { startedAt: Date.now(), endedAt: 0, ok: false };
      inFlight++;
      try {
        const reply = await client.sayHello({ name: `load-${n}-${i++}` }, { deadlineMs });
        record.ok = true;
        record.servedBy = reply.servedBy;
      } catch (err) {
        const e = err as RpcError;
        record.code = typeof e.code === "number" ? e.code : -1;
        record.message = e.message;
      }
      inFlight--;
      record.endedAt = Date.now();
      records.push(record);
      for (const wake of [...waiters]) wake();
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  const callers = Array.from({ length: concurrency }, (_, n) => caller(n));

  return stopAfterTest({
    records,
    get inFlight() {
      return inFlight;
    },
    failures: () => records.filter((r) => !r.ok),
    servedSince(since) {
      const counts = new Map<string, number>();
      for (const r of records) if (r.ok && r.endedAt >= since) counts.set(r.servedBy!, (counts.get(r.servedBy!) ?? 0) + 1);
      return counts;
    },
    reaches(instanceId, timeoutMs = 10_000) {
      const since = Date.now();
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = records.find((r) => r.ok && r.startedAt >= since && r.servedBy === instanceId);
          if (!hit) return;
          cleanup();
          resolve(hit.endedAt);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no call reached ${instanceId} within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    async stop() {
      running = false;
      await Promise.all(callers);
      return summarize(records, Date.now() - startedAt);
    },
  });
}

function summarize(records: readonly CallRecord[], durationMs: number): LoadSummary {
  const codes: Record<string, number> = {};
  let maxLatencyMs = 0;
  for (const r of records) {
    maxLatencyMs = Math.max(maxLatencyMs, r.endedAt - r.startedAt);
    if (!r.ok) codes[codeLabel(r.code)] = (codes[codeLabel(r.code)] ?? 0) + 1;
  }
  return { calls: records.length, failed: records.filter((r) => !r.ok).length, codes, maxLatencyMs, durationMs };
}

const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

function codeLabel(code: number | undefined): string {
  return code === undefined ? "NONE" : (CODE_NAMES[code] ?? `CODE_${code}`);
}

/**
 * Prints a fault's figures under the spec's title, in one block:
 * `calls 2,431 · failed 0 · recovery 1,083 ms`, then any extra figures.
 */
export function printFigures(fault: string, summary: LoadSummary, figures: Record<string, string | number>): void {
  const fmt = (v: string | number) => (typeof v === "number" ? `${Math.round(v).toLocaleString("en-US")}` : v);
  const codes = Object.entries(summary.codes).map(([c, n]) => `${c} ${n}`).join(", ");
  const head = `calls ${fmt(summary.calls)} · failed ${fmt(summary.failed)}${codes ? ` (${codes})` : ""} · max call ${fmt(summary.maxLatencyMs)} ms`;
  const rest = Object.entries(figures).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ");
  process.stdout.write(`      [${fault}] ${head}${rest ? ` · ${rest}` : ""}\n`);
}
