/**
 * Scenario 6: 1,000 instances of one service. A probe client is calling one base
 * instance when 1,000 more are registered (puts in 100-key transactions sent at once);
 * measured: etcd change → all in the client's endpoint set → first call served by a new
 * instance (the picker has new members) → every new instance has served (every subchannel
 * READY and picked), the longest event-loop stall of the client meanwhile, and its
 * memory before and after. Then one instance is added and removed at that scale, the
 * 1,000 are removed at once (one lease revoked), and a fresh client starts cold against
 * the 1,000.
 */
import { Etcd3, type IRequestOp } from "etcd3";
import { encodeInstance, instanceKey } from "../registry/etcd/keys";
import { sharedNow, sleep, waitFor } from "./clock";
import type { BenchContext } from "./context";
import type { Coverage, MembershipEvent, ProbeArgs } from "./probe-client";
import { int, ms, table, type Section } from "./report";
import { BenchWorker } from "./workers";

const SERVICE = "bench-scale";
const TXN_OPS = 100;
/** Calls the probe keeps in flight: enough to sweep 1,000 instances quickly, few enough not to saturate the base instance. */
const PROBE_CONCURRENCY = 16;

interface Member {
  id: string;
  address: string;
}

interface ScaleResult {
  balancer: ProbeArgs["balancer"];
  instances: number;
  putMs: number;
  toFirstInSetMs: number;
  toEndpointSetMs: number;
  toFirstNewAnswerMs: number;
  toAllAnsweredMs: number;
  /** Time the probe's call rate alone needs to reach every instance once. */
  sweepFloorMs: number;
  loopStallMs: number;
  resolverUpdates: number;
  before: { rssMiB: number; heapUsedMiB: number };
  after: { rssMiB: number; heapUsedMiB: number };
  addOneToAnswerMs: number;
  removeOneMs: number;
  removeAllMs: number;
  removeAllStallMs: number;
  cold?: { toFirstAnswerMs: number; toAllAnsweredMs: number };
}

export async function runScale(ctx: BenchContext): Promise<Section> {
  const count = ctx.quick ? 50 : 1000;
  const balancers: ProbeArgs["balancer"][] = ctx.quick ? ["round_robin"] : ["round_robin", "consistent_hash"];
  // The 1,000 share one process; the base instance (which carries the load before the change)
  // and the extra one live in another, so their accept loop is not queued behind the fleet's.
  const fleet = await BenchWorker.start("scale-fleet", "scale-fleet.ts", { cpu: ctx.cpus.server });
  const single = await BenchWorker.start("scale-single", "scale-fleet.ts", { cpu: ctx.cpus.server });
  const etcd = new Etcd3({ hosts: ctx.etcdEndpoints, defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + 10_000 }) });
  const results: ScaleResult[] = [];
  try {
    const many = await fleet.call<Member[]>("start", { ids: Array.from({ length: count }, (_, i) => `fleet-${String(i).padStart(4, "0")}`) });
    const [base, extra] = (await single.call<Member[]>("start", { ids: ["base", "extra"] })) as [Member, Member];
    const put = (member: Member, lease: string): IRequestOp => ({
      request_put: {
        key: Buffer.from(instanceKey(ctx.namespace, SERVICE, member.id)),
        value: Buffer.from(encodeInstance({ id: member.id, service: SERVICE, address: member.address, version: "", zone: "", weight: 1, metadata: {}, startedAt: Date.now() })),
        lease,
      },
    });
    const baseLease = (await etcd.leaseClient.leaseGrant({ TTL: 600 })).ID;
    await etcd.kv.txn({ success: [put(base, baseLease)] });

    for (const balancer of balancers) {
      ctx.log(`scale: ${count} instances, ${balancer}`);
      results.push(await scalePhase(ctx, etcd, balancer, many, extra, put, results.length === 0));
    }
    await etcd.leaseClient.leaseRevoke({ ID: baseLease });
  } finally {
    etcd.close();
    for (const worker of [fleet, single]) {
      await worker.call("stop").catch(() => undefined);
      await worker.stop();
    }
  }
  return report(count, results);
}

async function startProbe(ctx: BenchContext, balancer: ProbeArgs["balancer"]): Promise<{ probe: BenchWorker; createdAt: number }> {
  const probe = await BenchWorker.start(`scale-probe-${balancer}`, "probe-client.ts", { cpu: ctx.cpus.client, nodeArgs: ["--expose-gc"] });
  const args: ProbeArgs = { service: SERVICE, etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace, balancer, concurrency: PROBE_CONCURRENCY, pauseMs: 0 };
  const { createdAt } = await probe.call<{ createdAt: number }>("init", args);
  return { probe, createdAt };
}

async function scalePhase(
  ctx: BenchContext,
  etcd: Etcd3,
  balancer: ProbeArgs["balancer"],
  many: Member[],
  extra: Member,
  put: (m: Member, lease: string) => IRequestOp,
  cold: boolean,
): Promise<ScaleResult> {
  const { probe } = await startProbe(ctx, balancer);
  try {
    await waitFor("the probe to reach the base instance", async () => ((await probe.call<{ first: number | null }>("answers", { id: "base" })).first ?? undefined), 15_000);
    await sleep(500);
    const before = await probe.call<ScaleResult["before"]>("memory");
    const rateStart = await probe.call<{ answered: number }>("state");
    await sleep(500);
    const rateEnd = await probe.call<{ answered: number }>("state");
    const callsPerSecond = (rateEnd.answered - rateStart.answered) * 2;
    await probe.call("loopStall");
    const updatesBefore = (await probe.call<{ updates: number }>("state")).updates;

    // 1,000 instances appear.
    const lease = (await etcd.leaseClient.leaseGrant({ TTL: 600 })).ID;
    const batches: IRequestOp[][] = [];
    for (let i = 0; i < many.length; i += TXN_OPS) batches.push(many.slice(i, i + TXN_OPS).map((m) => put(m, lease)));
    const changedAt = sharedNow();
    await Promise.all(batches.map((ops) => etcd.kv.txn({ success: ops })));
    const putDoneAt = sharedNow();
    const inSet = await waitFor("all instances in the endpoint set", async () => {
      const s = await probe.call<{ members: number }>("state");
      return s.members >= many.length + 1 ? sharedNow() : undefined;
    }, 30_000);
    const added = await probe.call<MembershipEvent[]>("membership", { since: changedAt });
    const addedTimes = added.filter((e) => e.change === "added").map((e) => e.at);
    const lastAddedAt = Math.max(...addedTimes, 0) || inSet;
    const firstAddedAt = Math.min(...addedTimes);
    const coverage = await waitFor("every new instance to answer", async () => {
      const c = await probe.call<Coverage>("coverage", { prefix: "fleet-" });
      return c.covered >= many.length ? c : undefined;
    }, 60_000, 20);
    const loopStallMs = await probe.call<number>("loopStall");
    const resolverUpdates = (await probe.call<{ updates: number }>("state")).updates - updatesBefore;
    await sleep(500);
    const after = await probe.call<ScaleResult["after"]>("memory");

    // One more instance, then gone again, at this scale.
    const extraLease = (await etcd.leaseClient.leaseGrant({ TTL: 600 })).ID;
    const extraAt = sharedNow();
    await etcd.kv.txn({ success: [put(extra, extraLease)] });
    const extraAnswer = await waitFor("the extra instance to answer", async () => (await probe.call<{ first: number | null }>("answers", { id: "extra" })).first ?? undefined, 15_000, 2);
    const removeOneAt = sharedNow();
    await etcd.leaseClient.leaseRevoke({ ID: extraLease });
    const removedOne = await waitFor("the extra instance to leave the endpoint set", async () =>
      (await probe.call<MembershipEvent[]>("membership", { id: "extra", since: removeOneAt })).find((e) => e.change === "removed"),
    );

    let coldResult: ScaleResult["cold"];
    if (cold) {
      const fresh = await startProbe(ctx, balancer);
      try {
        const all = await waitFor("a cold client to reach every instance", async () => {
          const c = await fresh.probe.call<Coverage>("coverage", { prefix: "fleet-" });
          return c.covered >= many.length ? c : undefined;
        }, 60_000, 20);
        coldResult = { toFirstAnswerMs: all.firstAnswerAt - fresh.createdAt, toAllAnsweredMs: all.lastFirstAnswerAt - fresh.createdAt };
        await fresh.probe.call("stop");
      } finally {
        await fresh.probe.stop();
      }
    }

    // All 1,000 go at once.
    await probe.call("loopStall");
    const removeAllAt = sharedNow();
    await etcd.leaseClient.leaseRevoke({ ID: lease });
    await waitFor("the fleet to leave the endpoint set", async () => ((await probe.call<{ members: number }>("state")).members <= 1 ? true : undefined), 30_000);
    const removals = await probe.call<MembershipEvent[]>("membership", { since: removeAllAt });
    const lastRemovedAt = Math.max(...removals.filter((e) => e.change === "removed").map((e) => e.at));
    const removeAllStallMs = await probe.call<number>("loopStall");
    await probe.call("stop");
    return {
      balancer,
      instances: many.length,
      putMs: putDoneAt - changedAt,
      toFirstInSetMs: firstAddedAt - changedAt,
      toEndpointSetMs: lastAddedAt - changedAt,
      toFirstNewAnswerMs: coverage.firstAnswerAt - changedAt,
      toAllAnsweredMs: coverage.lastFirstAnswerAt - changedAt,
      sweepFloorMs: (many.length / callsPerSecond) * 1000,
      loopStallMs,
      resolverUpdates,
      before,
      after,
      addOneToAnswerMs: extraAnswer - extraAt,
      removeOneMs: removedOne.at - removeOneAt,
      removeAllMs: lastRemovedAt - removeAllAt,
      removeAllStallMs,
      cold: coldResult,
    };
  } finally {
    await probe.stop();
  }
}

function report(count: number, results: ScaleResult[]): Section {
  const rows: (string | number)[][] = [];
  const add = (label: string, f: (r: ScaleResult) => string) => rows.push([label, ...results.map(f)]);
  add("puts acknowledged (transactions of 100)", (r) => ms(r.putMs));
  add("etcd change → first new instance in the client's endpoint set", (r) => ms(r.toFirstInSetMs));
  add(`etcd change → all ${int(count)} in the client's endpoint set`, (r) => `${ms(r.toEndpointSetMs)} (${r.resolverUpdates} discovery updates)`);
  add("etcd change → first call served by a new instance", (r) => ms(r.toFirstNewAnswerMs));
  add(`etcd change → every new instance has served a call`, (r) => ms(r.toAllAnsweredMs));
  add("  of which the probe's call rate alone needs", (r) => ms(r.sweepFloorMs));
  add("longest event-loop stall in the client meanwhile", (r) => ms(r.loopStallMs));
  add("client RSS before → after (MiB)", (r) => `${r.before.rssMiB.toFixed(0)} → ${r.after.rssMiB.toFixed(0)}`);
  add("client heap before → after (MiB)", (r) => `${r.before.heapUsedMiB.toFixed(1)} → ${r.after.heapUsedMiB.toFixed(1)}`);
  add("memory per instance (RSS / heap, KiB)", (r) => `${(((r.after.rssMiB - r.before.rssMiB) * 1024) / r.instances).toFixed(0)} / ${(((r.after.heapUsedMiB - r.before.heapUsedMiB) * 1024) / r.instances).toFixed(1)}`);
  add(`one more instance at this scale: put → first call served`, (r) => ms(r.addOneToAnswerMs));
  add(`one instance removed: revoke → out of the endpoint set`, (r) => ms(r.removeOneMs));
  add(`all ${int(count)} removed (one lease revoked) → out of the endpoint set`, (r) => ms(r.removeAllMs));
  add("longest event-loop stall during that removal", (r) => ms(r.removeAllStallMs));
  add("cold client: created → first call", (r) => (r.cold ? ms(r.cold.toFirstAnswerMs) : "–"));
  add(`cold client: created → all ${int(count)} served`, (r) => (r.cold ? ms(r.cold.toAllAnsweredMs) : "–"));
  return {
    title: `6. Scale: ${int(count)} instances of one service`,
    body: [
      `The ${int(count)} instances are raw grpc-js servers on separate ports of one process (core 0, shared with etcd); the base instance and the one added later run in a second process; the probe client (core 1) keeps ${PROBE_CONCURRENCY} calls in flight. Times in ms from the moment the first transaction was sent.`,
      table(["", ...results.map((r) => r.balancer)], rows),
    ],
    goals: [],
    data: results,
  };
}
