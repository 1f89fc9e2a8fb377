/**
 * Cluster rate-limit accuracy, with every party in its own process:
 *
 *   node bin/run.js bench/gateway-cluster-limit.ts [--limit 100] [--seconds 10] [--gateways 3] [--trials 3] [--redis-timeout-ms 100]
 *
 * A greeter, a private etcd and a private Redis; `--gateways` gateway processes share one
 * cluster limit of `--limit` requests per second (burst 10) kept in Redis; one load-generator
 * process per gateway offers it `--limit` requests per second, open loop, all starting on the
 * same instant, so the cluster is offered gateways × limit. A correct shared limit admits
 * limit × elapsed + burst in all, whichever gateway a request reaches; each gateway counting
 * alone would admit about gateways times that. On a loaded machine the gateways answer later
 * than the load was sent, so the figures are taken over the answering window, and as the most
 * admitted in any one-second window (a shared limit never lets more than limit + burst through
 * in one second). A Redis answer slower than `--redis-timeout-ms`
 * (the gateway's `redisTimeoutMs`, default 100) makes that request fall back to the gateway's
 * local bucket (fail open), which over-admits: on a loaded machine, run it with a larger value
 * too, to tell the shared limit's accuracy from its fallback.
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import * as os from "node:os";
import { createServer } from "protomesh";
import { startEmbeddedEtcd } from "protomesh/registry";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { PolicyStore } from "../gateway";
import { deadPort } from "../test/helpers/etcd";
import { BenchWorker } from "./workers";

interface LoadResult {
  offered: number;
  admitted: number;
  refused: number;
  failed: number;
  sentInSeconds: number;
  answeredInSeconds: number;
  maxLagMs: number;
  admittedAt: number[];
  startedAt: number;
}

/** The most timestamps (ms) inside any window of `ms`. */
function busiestWindow(times: number[], ms: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { limit: { type: "string" }, seconds: { type: "string" }, gateways: { type: "string" }, trials: { type: "string" }, "redis-timeout-ms": { type: "string" } } });
  const limit = Number(values.limit ?? 100);
  const seconds = Number(values.seconds ?? 10);
  const count = Number(values.gateways ?? 3);
  const trials = Number(values.trials ?? 3);
  const redisTimeoutMs = Number(values["redis-timeout-ms"] ?? 100);
  for (const [k, v] of Object.entries({ limit, seconds, gateways: count, trials, "redis-timeout-ms": redisTimeoutMs })) if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k} needs a positive whole number, got ${String(v)}`);
  const burst = 10;
  process.stdout.write(`cluster rate limit: ${count} gateway processes share ${limit}/s (burst ${burst}) in Redis; ${count} load processes offer ${limit}/s each for ${seconds} s; Redis timeout ${redisTimeoutMs} ms; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);

  const greeter = createServer({});
  greeter.add(HttpGreeterDefinition, httpGreeterHandlers("bench"));
  const greeterAddress = `127.0.0.1:${await greeter.listen("127.0.0.1:0")}`;
  const etcd = await startEmbeddedEtcd();
  const redisPort = await deadPort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const namespace = `bench-limit-${process.pid}`;
  const workers: BenchWorker[] = [];
  const store = new PolicyStore({ endpoints: etcd.endpoints, namespace, env: "bench" });
  try {
    const gateways = await Promise.all(Array.from({ length: count }, (_, i) => BenchWorker.start(`gateway-${i}`, "gateway-limit-worker.ts")));
    const loads = await Promise.all(Array.from({ length: count }, (_, i) => BenchWorker.start(`load-${i}`, "gateway-limit-worker.ts")));
    workers.push(...gateways, ...loads);
    const ports = await Promise.all(gateways.map((g) => g.call<{ port: number }>("gateway", { greeter: greeterAddress, etcd: etcd.endpoints, namespace, redis: `redis://127.0.0.1:${redisPort}`, redisTimeoutMs })));
    const ratios: number[] = [];
    const peaks: number[] = [];
    for (let t = 0; t < trials; t++) {
      // A new version each trial (the first applies the limit); the bucket refills within 0.1 s between trials.
      const rec = await store.write({ defaults: { timeoutMs: 10_000 + t, rateLimit: { key: "route", cluster: { limit, windowSeconds: 1, burst } } } });
      for (const g of gateways) while ((await g.call<{ version: number }>("version")).version < rec.version) await new Promise((r) => setTimeout(r, 20));
      const startAt = Date.now() + 500;
      const results = await Promise.all(loads.map((l, i) => l.call<LoadResult>("load", { port: ports[i]!.port, rate: limit, seconds, startAt })));
      const sum = (k: "offered" | "admitted" | "refused" | "failed") => results.reduce((s, r) => s + r[k], 0);
      const start = Math.min(...results.map((r) => r.startedAt));
      const end = Math.max(...results.map((r) => r.startedAt + r.answeredInSeconds * 1000));
      const span = (end - start) / 1000;
      const allowed = limit * span + burst;
      const admitted = sum("admitted");
      const busiest = busiestWindow(results.flatMap((r) => r.admittedAt), 1000);
      ratios.push(admitted / allowed);
      peaks.push(busiest / (limit + burst));
      process.stdout.write(
        `trial ${t + 1}: offered ${sum("offered")} in ${Math.max(...results.map((r) => r.sentInSeconds)).toFixed(2)} s (sender lag max ${Math.max(...results.map((r) => r.maxLagMs)).toFixed(0)} ms), answered within ${span.toFixed(2)} s; ` +
          `admitted ${admitted} (per gateway ${results.map((r) => r.admitted).join(" / ")}), refused ${sum("refused")}, failed ${sum("failed")}; ` +
          `allowed over the answering window ${allowed.toFixed(0)} → ${(admitted / allowed).toFixed(3)}; busiest second ${busiest} admitted (limit + burst ${limit + burst}) → ${(busiest / (limit + burst)).toFixed(3)}\n`,
      );
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    process.stdout.write(`median over ${trials} trials: admitted/allowed ${median(ratios).toFixed(3)}, busiest second/(limit + burst) ${median(peaks).toFixed(3)} (≤ 1 = the shared limit held; about ${count} = no sharing)\n`);
  } finally {
    for (const w of workers) await w.call("close").catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
    store.close();
    redis.kill("SIGKILL");
    await etcd.stop();
    await greeter.shutdown();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
