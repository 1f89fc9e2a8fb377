/**
 * The Linkerd "slow server" scenario (Buoyant, "Beyond Round Robin", 2016), with the backends
 * out of the client's process: 10 greeter backends in `--processes` worker processes (default
 * 2, one per core), registered in a real etcd; one client per balancer dialling `etcd:///greeter`
 * as a user would, with `--concurrency` calls in flight (closed loop) or, with `--rate N`, N calls
 * a second on a fixed schedule (open loop, each latency counted from the call's scheduled time,
 * so a stalled client does not hide its own delay). Service time is lognormal
 * (median `--median-ms` 4, σ `--sigma` 0.6: p99 ≈ 4×, p99.9 ≈ 6.4× the median). For each
 * balancer, in one run: a warm-up, a healthy window (`--healthy-seconds`, the baseline), then
 * b0 turns `--factor` (10) × slower for `--seconds` (default 30); the toggle is an IPC command
 * to the process hosting b0.
 *
 * Reported per balancer and window: p50/p99/p99.9, the share of calls answered within
 * `--deadline-ms` (a call's deadline; a deadline miss counts as the deadline), the share of calls
 * b0 answered, and the client's own event-loop delay (p99), which says whether the client's
 * queueing could hide the slow backend.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createClient, etcdRegistry, startEmbeddedEtcd, type BalancerOption } from "../index";
import { GreeterDefinition, type GreeterClient } from "../gen/examples/greeter/v1/greeter_protomesh";
import { percentile } from "./stats";
import type { SlowArgs, StartBackendsArgs } from "./traffic-backends";
import { BenchWorker, pinProcess, planCpus, stopAllWorkers } from "./workers";

export interface SlowOptions {
  seconds: number;
  healthySeconds: number;
  warmupSeconds: number;
  concurrency: number;
  /** Calls per second, open loop (latency counted from each call's scheduled time); 0: closed loop of `concurrency`. */
  rate: number;
  deadlineMs: number;
  medianMs: number;
  sigma: number;
  factor: number;
  backends: number;
  processes: number;
  pin: boolean;
  balancers: string[];
}

export const SLOW_DEFAULTS: SlowOptions = {
  seconds: 30,
  healthySeconds: 10,
  warmupSeconds: 2,
  concurrency: 20,
  rate: 0,
  deadlineMs: 200,
  medianMs: 4,
  sigma: 0.6,
  factor: 10,
  backends: 10,
  processes: 2,
  pin: false,
  balancers: ["round_robin", "p2c", "least_request"],
};

interface Window {
  latencies: number[];
  within: number;
  failed: number;
  hits: Map<string, number>;
  loopP99Ms: number;
}

export async function slowScenario(o: SlowOptions): Promise<void> {
  const etcd = await startEmbeddedEtcd({});
  const namespace = `bench-slow-${process.pid}`;
  const cpus = planCpus(o.pin);
  const ids = Array.from({ length: o.backends }, (_, i) => `b${i}`);
  const workers: BenchWorker[] = [];
  const host = new Map<string, BenchWorker>();
  try {
    for (let p = 0; p < o.processes; p++) {
      const mine = ids.filter((_, i) => i % o.processes === p);
      if (mine.length === 0) continue;
      const worker = await BenchWorker.start(`backends-${p}`, "traffic-backends.ts", { cpu: cpus.server });
      workers.push(worker);
      const args: StartBackendsArgs = { etcdEndpoints: etcd.endpoints, namespace, ids: mine, medianMs: o.medianMs, sigma: o.sigma, ttlSeconds: 10 };
      await worker.call("start", args);
      for (const id of mine) host.set(id, worker);
    }
    for (const member of etcd.members) if (member.pid !== undefined) pinProcess(member.pid, cpus.server);
    pinProcess(process.pid, cpus.client);
    const slowHost = host.get("b0")!;
    const setFactor = (factor: number) => slowHost.call("slow", { id: "b0", factor } satisfies SlowArgs);
    console.log(
      `slow: ${o.backends} backends in ${workers.length} processes (lognormal service time, median ${o.medianMs} ms, σ ${o.sigma}), ` +
        `b0 ${o.factor}× slower for ${o.seconds} s after a ${o.healthySeconds} s healthy baseline; ${o.rate > 0 ? `${o.rate} calls/s (open loop)` : `${o.concurrency} calls in flight`}, deadline ${o.deadlineMs} ms; ${o.pin ? cpus.description : "not pinned (--pin: servers and etcd on core 0, the client on core 1)"}`,
    );
    const rows: string[] = [];
    for (const name of o.balancers) {
      const discovery = etcdRegistry({ endpoints: etcd.endpoints, namespace });
      const client = createClient(GreeterDefinition, "etcd:///greeter", { discovery, balancer: name as BalancerOption });
      try {
        await setFactor(1);
        // Warm-up: every backend answered at least once, then `warmupSeconds` of load (p2c learns its estimates).
        const seen = new Set<string>();
        const until = performance.now() + 60_000;
        while (seen.size < o.backends && performance.now() < until) {
          const w = await measure(client, o, 300);
          for (const id of w.hits.keys()) seen.add(id);
        }
        if (seen.size < o.backends) throw new Error(`${name}: only ${seen.size} of ${o.backends} backends answered within 60 s`);
        await measure(client, o, o.warmupSeconds * 1000);
        const healthy = await measure(client, o, o.healthySeconds * 1000);
        await setFactor(o.factor);
        const slow = await measure(client, o, o.seconds * 1000);
        await setFactor(1);
        rows.push(report(name, healthy, slow, o));
        console.log(rows[rows.length - 1]);
      } finally {
        client.$close();
        await discovery.close();
      }
    }
    for (const w of workers) await w.call("stop");
  } finally {
    await stopAllWorkers();
    await etcd.stop();
  }
}

/** Runs the closed loop for `ms` and collects what it saw. */
async function measure(client: GreeterClient, o: SlowOptions, ms: number): Promise<Window> {
  const w: Window = { latencies: [], within: 0, failed: 0, hits: new Map(), loopP99Ms: 0 };
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = performance.now() + ms;
  const call = async (from: number) => {
    try {
      const r = await client.sayHello({ name: "x" }, { deadlineMs: o.deadlineMs });
      const took = performance.now() - from;
      w.hits.set(r.servedBy, (w.hits.get(r.servedBy) ?? 0) + 1);
      w.latencies.push(took);
      if (took <= o.deadlineMs) w.within++;
    } catch {
      w.failed++;
      w.latencies.push(Math.max(o.deadlineMs, performance.now() - from));
    }
  };
  if (o.rate > 0) {
    // Open loop: every call due by now is sent, however late the timer fired; its latency starts at its slot.
    const interval = 1000 / o.rate;
    const calls: Promise<void>[] = [];
    let next = performance.now();
    while (next < end) {
      while (next <= performance.now() && next < end) {
        calls.push(call(next));
        next += interval;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(calls);
  } else {
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < end) await call(performance.now());
      }),
    );
  }
  loop.disable();
  w.loopP99Ms = loop.percentile(99) / 1e6;
  return w;
}

function report(name: string, healthy: Window, slow: Window, o: SlowOptions): string {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const line = (w: Window) => {
    const n = w.latencies.length;
    return `p50 ${f(percentile(w.latencies, 50))} p99 ${f(percentile(w.latencies, 99))} p99.9 ${f(percentile(w.latencies, 99.9))} ms, ${n} calls, ${((100 * w.within) / n).toFixed(2)} % ≤ ${o.deadlineMs} ms, b0 ${((100 * (w.hits.get("b0") ?? 0)) / n).toFixed(1)} %, client loop p99 ${f(w.loopP99Ms)} ms`;
  };
  const ratio = percentile(slow.latencies, 99.9) / percentile(healthy.latencies, 99.9);
  return `  ${name.padEnd(13)} healthy: ${line(healthy)}\n  ${"".padEnd(13)} one slow: ${line(slow)}\n  ${"".padEnd(13)} p99.9 one slow / healthy: ${ratio.toFixed(2)}×`;
}
