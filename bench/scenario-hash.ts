/**
 * Scenario 5: consistent-hash quality, in process (no network): load spread (peak/mean)
 * at 10 and 50 members, keys moved when a member joins or leaves against the ideal 1/N,
 * and the cost of one pick in the `consistent_hash` picker against fake children.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { DEFAULT_VNODES, HashRing } from "../runtime/balancing/hash-ring";
import { ConsistentHashPicker, DEFAULT_HASH_HEADER, type PickerMember } from "../runtime/balancing/lb-consistent-hash";
import type { BenchContext } from "./context";
import { ms, table, type Section } from "./report";
import { max, median, percentile } from "./stats";

type Picker = grpc.experimental.Picker;
type PickArgs = grpc.experimental.PickArgs;

function randomMembers(n: number): { key: string; weight: number }[] {
  const keys = new Set<string>();
  while (keys.size < n) {
    const b = randomBytes(4);
    keys.add(`10.${b[0]}.${b[1]}.${b[2]}:${50000 + (b[3]! % 1000)}`);
  }
  return [...keys].map((key) => ({ key, weight: 1 }));
}

function randomKeys(n: number): string[] {
  return Array.from({ length: n }, () => `user-${randomBytes(8).toString("hex")}`);
}

function owners(ring: HashRing, keys: readonly string[]): string[] {
  return keys.map((k) => ring.owner(k)!.key);
}

interface SetResult {
  peakOverMean: number;
  movedOnAdd: number;
  /** Keys that moved between two members that were both there before and after (should be 0). */
  strayOnAdd: number;
  movedOnRemove: number;
  strayOnRemove: number;
}

function measureSet(n: number, keys: readonly string[]): SetResult {
  const members = randomMembers(n + 1);
  const joiner = members.pop()!;
  const ring = new HashRing(members, DEFAULT_VNODES);
  const before = owners(ring, keys);
  const load = new Map<string, number>();
  for (const o of before) load.set(o, (load.get(o) ?? 0) + 1);
  const peakOverMean = max([...load.values()]) / (keys.length / n);

  const grown = owners(new HashRing([...members, joiner], DEFAULT_VNODES), keys);
  let movedOnAdd = 0;
  let strayOnAdd = 0;
  for (let i = 0; i < keys.length; i++) {
    if (grown[i] === before[i]) continue;
    movedOnAdd++;
    if (grown[i] !== joiner.key) strayOnAdd++;
  }

  const leaver = members[Math.floor(Math.random() * members.length)]!;
  const shrunk = owners(new HashRing(members.filter((m) => m !== leaver), DEFAULT_VNODES), keys);
  let movedOnRemove = 0;
  let strayOnRemove = 0;
  for (let i = 0; i < keys.length; i++) {
    if (shrunk[i] === before[i]) continue;
    movedOnRemove++;
    if (before[i] !== leaver.key) strayOnRemove++;
  }
  return { peakOverMean, movedOnAdd: movedOnAdd / keys.length, strayOnAdd, movedOnRemove: movedOnRemove / keys.length, strayOnRemove };
}

/** A child picker that always completes at once, so the pick measured is ours alone. */
function fakeChild(): Picker {
  const result = { pickResultType: grpc.experimental.PickResultType.COMPLETE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
  return { pick: () => result as unknown as grpc.experimental.PickResult };
}

/** Nanoseconds per pick, median of `runs` runs of `picks` picks over 4,096 distinct keys (or none). */
function pickCost(n: number, keyed: boolean, boundedLoad: number | undefined, picks: number, runs: number): number {
  const members = randomMembers(n);
  const ring = new HashRing(members, DEFAULT_VNODES);
  const pickerMembers: PickerMember[] = ring.members.map(() => ({
    picker: fakeChild(),
    state: grpc.connectivityState.READY,
    exitIdle: () => {},
    load: { inFlight: 0 },
    observer: { claim: () => {}, release: () => {}, opened: () => {}, closed: () => {} },
  }));
  const picker = new ConsistentHashPicker(ring, pickerMembers, DEFAULT_HASH_HEADER, boundedLoad, { total: 0 }, 0);
  const args: PickArgs[] = randomKeys(4096).map((key) => {
    const metadata = new grpc.Metadata();
    if (keyed) metadata.set(DEFAULT_HASH_HEADER, key);
    return { metadata, extraPickInfo: {} };
  });
  const samples: number[] = [];
  let sink = 0;
  for (let r = 0; r < runs + 1; r++) {
    const t0 = performance.now();
    for (let i = 0; i < picks; i++) sink += picker.pick(args[i & 4095]!).pickResultType;
    const elapsed = performance.now() - t0;
    if (r > 0) samples.push((elapsed * 1e6) / picks); // the first run warms the JIT
  }
  if (sink < 0) throw new Error("unreachable");
  return median(samples);
}

function buildMs(n: number, runs: number): number {
  const members = randomMembers(n);
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    new HashRing(members, DEFAULT_VNODES);
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

export async function runHashQuality(ctx: BenchContext): Promise<Section> {
  const sets = ctx.quick ? 2 : 30;
  const keyCount = ctx.quick ? 20_000 : 200_000;
  const sizes = [10, 50];
  const quality: (string | number)[][] = [];
  const data: Record<string, unknown> = {};
  for (const n of sizes) {
    const keys = randomKeys(keyCount);
    const results: SetResult[] = [];
    for (let s = 0; s < sets; s++) results.push(measureSet(n, keys));
    ctx.log(`hash: ${n} members, ${sets} sets done`);
    data[`quality-${n}`] = results;
    const peak = results.map((r) => r.peakOverMean);
    const add = results.map((r) => r.movedOnAdd);
    const remove = results.map((r) => r.movedOnRemove);
    const stray = results.reduce((k, r) => k + r.strayOnAdd + r.strayOnRemove, 0);
    quality.push([
      n,
      `${median(peak).toFixed(3)} / ${percentile(peak, 99).toFixed(3)}`,
      `${(median(add) * 100).toFixed(2)} % (${((median(add) * (n + 1))).toFixed(2)}× ideal ${(100 / (n + 1)).toFixed(2)} %)`,
      `${(median(remove) * 100).toFixed(2)} % (${((median(remove) * n)).toFixed(2)}× ideal ${(100 / n).toFixed(2)} %)`,
      stray,
    ]);
  }

  const picks = ctx.quick ? 20_000 : 300_000;
  const runs = ctx.quick ? 2 : 5;
  const pickRows: (string | number)[][] = [];
  for (const n of [10, 50, 1000]) {
    const keyed = pickCost(n, true, undefined, picks, runs);
    const bounded = pickCost(n, true, 1.25, picks, runs);
    const keyless = pickCost(n, false, undefined, picks, runs);
    pickRows.push([n, keyed.toFixed(0), bounded.toFixed(0), keyless.toFixed(0), ms(buildMs(n, ctx.quick ? 3 : 9))]);
  }
  ctx.log("hash: pick cost done");
  return {
    title: "5. Consistent hash quality",
    body: [
      `Computed in the orchestrating process (no network). Ring as the \`consistent_hash\` policy builds it (MurmurHash3, ${DEFAULT_VNODES} virtual nodes per member of mean weight, equal weights). ${sets} random address sets per size, ${keyCount.toLocaleString("en-US")} random keys; median (and p99 over sets) of peak/mean; keys moved when one member joins or one leaves, against the ideal 1/N. "Stray" counts keys that moved between two members that were there before and after (a consistent hash moves none).`,
      table(["members", "peak/mean, median / p99", "moved on add", "moved on remove", "stray moves"], quality),
      `Cost of one pick in \`ConsistentHashPicker\` with children that complete at once (the policy's own work: read the header, MurmurHash3 the key, binary-search the ring, check READY), ns per pick, median of ${runs} runs of ${picks.toLocaleString("en-US")} picks over 4,096 keys, and the time to build a ring:`,
      table(["members", "keyed pick, ns", "keyed, bounded load 1.25, ns", "keyless (round-robin) pick, ns", "ring build, ms"], pickRows),
    ],
    goals: [],
    data,
  };
}
