/**
 * Helpers for the mesh specs (real etcd, real greeter processes): watch what a
 * client's resolver is told, keep calls flowing while something breaks, and
 * find which instance serves each of many keys.
 */
import type { Discovery, DiscoveryUpdate, InstanceInfo } from "../../registry/registry";
import { Recorder } from "./wait";
import { stopAfterTest } from "./leftovers";

/** One instance set handed to a client's resolver, with when it arrived. */
export interface SetChange {
  readonly at: number;
  /** Instance ids, sorted. */
  readonly ids: readonly string[];
  readonly instances: readonly InstanceInfo[];
}

/**
 * Wraps a Discovery so every set it delivers to a watcher (a client's `etcd:///`
 * resolver, when passed as the client's `discovery`) is also recorded.
 */
export function tapDiscovery(inner: Discovery): { discovery: Discovery; sets: Recorder<SetChange> } {
  const sets = new Recorder<SetChange>();
  const discovery: Discovery = {
    list: (service) => inner.list(service),
    watch: (service, onUpdate, onError) =>
      inner.watch(
        service,
        (update: DiscoveryUpdate) => {
          sets.push({ at: Date.now(), ids: update.instances.map((i) => i.id).sort(), instances: update.instances });
          onUpdate(update);
        },
        onError,
      ),
  };
  return { discovery, sets };
}

/** The outcome of one call made by {@link steadyLoad}. */
export interface CallRecord {
  readonly startedAt: number;
  readonly endedAt: number;
  /** The instance that answered, on success. */
  readonly servedBy?: string;
  /** The gRPC status code, on failure. */
  readonly code?: number;
  readonly message?: string;
}

export interface SteadyLoad {
  readonly records: readonly CallRecord[];
  readonly failures: readonly CallRecord[];
  /** Stops issuing calls and resolves once the last one has ended. */
  stop(): Promise<CallRecord[]>;
}

/**
 * Keeps `concurrency` calls going back to back (each worker pauses `pauseMs`
 * between calls) until stopped. `call` resolves with the answering instance's id
 * and rejects with an error carrying a numeric `code`.
 */
export function steadyLoad(call: () => Promise<string>, { concurrency = 8, pauseMs = 2 } = {}): SteadyLoad {
  const records: CallRecord[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const startedAt = Date.now();
      try {
        const servedBy = await call();
        records.push({ startedAt, endedAt: Date.now(), servedBy });
      } catch (err) {
        const { code, message } = err as { code?: unknown; message?: string };
        records.push({ startedAt, endedAt: Date.now(), code: typeof code === "number" ? code : -1, message });
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return stopAfterTest({
    records,
    get failures() {
      return records.filter((r) => r.code !== undefined);
    },
    async stop() {
      running = false;
      await Promise.all(workers);
      return records;
    },
  });
}

/** Resolves once `load` has recorded `n` more successful calls than it had. */
export async function moreCalls(load: SteadyLoad, n: number, timeoutMs = 5000): Promise<void> {
  const target = load.records.filter((r) => r.servedBy !== undefined).length + n;
  const deadline = Date.now() + timeoutMs;
  while (load.records.filter((r) => r.servedBy !== undefined).length < target) {
    if (Date.now() > deadline) throw new Error(`steady load made fewer than ${n} successful calls in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Calls `call(key)` for every key, `concurrency` at a time; returns key → serving instance id. */
export async function ownersOf(keys: readonly string[], call: (key: string) => Promise<string>, concurrency = 100): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      owners.set(key, await call(key));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  return owners;
}

/** How many times each value occurs. */
export function tally(values: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

/** `n` distinct keys (`<prefix>-0` …). */
export function keys(n: number, prefix = "user"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}
