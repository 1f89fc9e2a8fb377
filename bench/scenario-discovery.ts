/**
 * Scenario 4: discovery. A probe client keeps calling `etcd:///bench-disc` (round_robin)
 * while instances come and go next to a base instance that stays up:
 * - registration → first call served by the new instance (server-side timestamp);
 * - graceful shutdown start → last call that reached the instance, and → its removal from
 *   the client's endpoint set, counting calls that failed meanwhile (should be none);
 * - SIGKILL → removal from the client's endpoint set (bounded by the lease TTL), counting
 *   the calls that failed.
 */
import { sharedNow, sleep, waitFor } from "./clock";
import type { BenchContext } from "./context";
import type { ShutdownTimes, StartedInstance, StartInstanceArgs } from "./discovery-server";
import type { MembershipEvent, ProbeArgs } from "./probe-client";
import { ms, table, type GoalCheck, type Section } from "./report";
import { max, median, percentile } from "./stats";
import { BenchWorker } from "./workers";

const SERVICE = "bench-disc";

interface GracefulTrial {
  putMs: number;
  toEndpointSetMs: number;
  toFirstCallMs: number;
  toLastCallMs: number;
  toRemovalMs: number;
  drainMs: number;
  callsAfterShutdownStart: number;
  failedCalls: number;
}

interface KillTrial {
  ttlSeconds: number;
  toRemovalMs: number;
  failedCalls: number;
  /** From the kill to the last failed call: how long calls kept landing on the dead instance. */
  failuresForMs: number;
}

export async function runDiscovery(ctx: BenchContext): Promise<Section> {
  const etcd = { etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace };
  const host = await BenchWorker.start("discovery-server", "discovery-server.ts", { cpu: ctx.cpus.server });
  const probe = await BenchWorker.start("probe-client", "probe-client.ts", { cpu: ctx.cpus.client, nodeArgs: ["--expose-gc"] });
  try {
    const base: StartInstanceArgs = { id: "base", service: SERVICE, ...etcd };
    await host.call<StartedInstance>("start", base);
    const probeArgs: ProbeArgs = { service: SERVICE, ...etcd, balancer: "round_robin", concurrency: 2, pauseMs: 1 };
    await probe.call("init", probeArgs);
    await host.call("firstCall", { id: "base", timeoutMs: 10_000 });

    const trials = ctx.quick ? 3 : 50;
    const graceful: GracefulTrial[] = [];
    for (let i = 0; i < trials; i++) {
      graceful.push(await gracefulTrial(host, probe, `trial-${i}`, etcd));
      if ((i + 1) % 10 === 0) ctx.log(`discovery: ${i + 1}/${trials} registration trials`);
    }

    const killPlan = ctx.quick ? [2] : [2, 2, 2, 2, 2, 10];
    const kills: KillTrial[] = [];
    for (const [i, ttlSeconds] of killPlan.entries()) {
      kills.push(await killTrial(ctx, probe, `kill-${i}`, ttlSeconds, etcd));
      ctx.log(`discovery: SIGKILL trial ${i + 1}/${killPlan.length} (TTL ${ttlSeconds} s)`);
    }
    await probe.call("stop");
    return report(graceful, kills);
  } finally {
    await probe.stop();
    await host.call("shutdown", { id: "base" }).catch(() => undefined);
    await host.stop();
  }
}

async function gracefulTrial(host: BenchWorker, probe: BenchWorker, id: string, etcd: { etcdEndpoints: string[]; namespace: string }): Promise<GracefulTrial> {
  const started = await host.call<StartedInstance>("start", { id, service: SERVICE, ...etcd } satisfies StartInstanceArgs);
  const firstCallAt = await host.call<number>("firstCall", { id, timeoutMs: 10_000 });
  const added = await waitFor(`${id} in the endpoint set`, async () => (await probe.call<MembershipEvent[]>("membership", { id }))[0]);
  await sleep(20);
  const down = await host.call<ShutdownTimes>("shutdown", { id });
  const removed = await waitFor(`${id} out of the endpoint set`, async () =>
    (await probe.call<MembershipEvent[]>("membership", { id, since: down.startedAt })).find((e) => e.change === "removed"),
  );
  const failed = await probe.call<{ count: number }>("failures", { from: down.startedAt, to: down.closedAt + 50 });
  return {
    putMs: started.registeredAt - started.registeringAt,
    toEndpointSetMs: added.at - started.registeringAt,
    toFirstCallMs: firstCallAt - started.registeringAt,
    toLastCallMs: down.lastCallAt - down.startedAt,
    toRemovalMs: removed.at - down.startedAt,
    drainMs: down.closedAt - down.startedAt,
    callsAfterShutdownStart: down.callsAfterStart,
    failedCalls: failed.count,
  };
}

async function killTrial(ctx: BenchContext, probe: BenchWorker, id: string, ttlSeconds: number, etcd: { etcdEndpoints: string[]; namespace: string }): Promise<KillTrial> {
  const victim = await BenchWorker.start(`victim-${id}`, "discovery-server.ts", { cpu: ctx.cpus.server });
  try {
    await victim.call<StartedInstance>("start", { id, service: SERVICE, ttlSeconds, ...etcd } satisfies StartInstanceArgs);
    await victim.call("firstCall", { id, timeoutMs: 10_000 });
    await sleep(20);
    const killedAt = sharedNow();
    await victim.kill("SIGKILL");
    const removed = await waitFor(
      `${id} out of the endpoint set after SIGKILL`,
      async () => (await probe.call<MembershipEvent[]>("membership", { id, since: killedAt })).find((e) => e.change === "removed"),
      ttlSeconds * 1000 + 10_000,
      10,
    );
    const failed = await probe.call<{ count: number }>("failures", { from: killedAt, to: removed.at });
    let failuresForMs = 0;
    if (failed.count > 0) {
      // Bisect-free: ask for failures in growing windows until all are covered.
      for (const span of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 20_000]) {
        const within = await probe.call<{ count: number }>("failures", { from: killedAt, to: killedAt + span });
        if (within.count === failed.count) {
          failuresForMs = span;
          break;
        }
      }
    }
    return { ttlSeconds, toRemovalMs: removed.at - killedAt, failedCalls: failed.count, failuresForMs };
  } finally {
    await victim.kill("SIGKILL");
  }
}

function row(label: string, values: number[]): string[] {
  return [label, ms(median(values)), ms(percentile(values, 99)), ms(max(values))];
}

function report(graceful: GracefulTrial[], kills: KillTrial[]): Section {
  const pick = <K extends keyof GracefulTrial>(k: K) => graceful.map((t) => t[k]);
  const firstCall = pick("toFirstCallMs");
  const medianFirst = median(firstCall);
  const p99First = percentile(firstCall, 99);
  const goals: GoalCheck[] = [
    { goal: "registration → first served call, median ≤ 20 ms", measured: `${ms(medianFirst)} ms`, met: medianFirst <= 20 },
    { goal: "registration → first served call, p99 ≤ 100 ms", measured: `${ms(p99First)} ms`, met: p99First <= 100 },
  ];
  const killRows = [...new Set(kills.map((k) => k.ttlSeconds))].map((ttl) => {
    const set = kills.filter((k) => k.ttlSeconds === ttl);
    return [
      `${ttl} s`,
      set.length,
      ms(median(set.map((k) => k.toRemovalMs))),
      ms(max(set.map((k) => k.toRemovalMs))),
      set.map((k) => k.failedCalls).join(", "),
      set.map((k) => (k.failedCalls === 0 ? "–" : `≤ ${k.failuresForMs} ms`)).join(", "),
    ];
  });
  return {
    title: "4. Discovery: registration, graceful shutdown, SIGKILL",
    body: [
      `A probe client (2 loops, 1 ms pause between calls) calls \`etcd:///${SERVICE}\` with round_robin; a base instance stays up. ${graceful.length} trials: an instance registers, serves, then shuts down gracefully. Times are from the shared monotonic clock of the machine; ms.`,
      table(
        ["interval (ms)", "median", "p99", "max"],
        [
          row("registration start → put acknowledged (lease grant + put)", pick("putMs")),
          row("registration start → in the client's endpoint set", pick("toEndpointSetMs")),
          row("registration start → first call served", firstCall),
          // The same without etcd's own write latency (its fsync), which the trials above include.
          row("put acknowledged → first call served (the watch, resolver, connect and pick)", graceful.map((t) => t.toFirstCallMs - t.putMs)),
          row("shutdown start → last call received", pick("toLastCallMs")),
          row("shutdown start → out of the client's endpoint set", pick("toRemovalMs")),
          row("shutdown start → closed (deregister, 100 ms delay, drain)", pick("drainMs")),
        ],
      ),
      `Calls failed at the client during graceful shutdowns: ${graceful.reduce((n, t) => n + t.failedCalls, 0)} in ${graceful.length} trials. Calls that reached an instance after its shutdown started: median ${median(pick("callsAfterShutdownStart"))}, max ${max(pick("callsAfterShutdownStart"))}.`,
      "SIGKILL: an instance in its own process is killed while serving. Removal from the endpoint set waits for etcd to expire the lease (nothing deregisters a killed process); meanwhile grpc-js drops the dead connection from round_robin's picker on its own, so only the calls in flight at the kill fail.",
      table(["lease TTL", "trials", "kill → removed, median ms", "max ms", "failed calls per trial", "failures within"], killRows),
    ],
    goals,
    data: { graceful, kills },
  };
}
