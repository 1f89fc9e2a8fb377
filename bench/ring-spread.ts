/**
 * What a ring of 1,000 members costs and how evenly it shares keys, by points per member:
 * the exact share of the hash space each member owns (the sum of its arcs, no key sampling),
 * peak over mean, over random address sets; and the CPU time of building the ring the
 * `consistent_hash` policy builds (first build in the process, before the JIT has warmed up,
 * then the median of warm builds).
 *
 *   node bin/run.js bench/ring-spread.ts [members] [address sets]
 */
import { randomBytes } from "node:crypto";
import { DEFAULT_VNODES, HashRing, VnodeHashes, hashString } from "../runtime/balancing/hash-ring";

function randomAddresses(n: number): string[] {
  const keys = new Set<string>();
  while (keys.size < n) {
    const b = randomBytes(4);
    keys.add(`10.${b[0]}.${b[1]}.${b[2]}:${50000 + (b[3]! % 1000)}`);
  }
  return [...keys];
}

/** Peak over mean of the members' exact shares of the hash space with `perMember` points each. */
function peakOverMean(addresses: readonly string[], perMember: number): number {
  const points: [number, number][] = [];
  addresses.forEach((key, i) => {
    for (let v = 0; v < perMember; v++) points.push([hashString(`${key}#${v}`), i]);
  });
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const share = new Float64Array(addresses.length);
  for (let p = 0; p < points.length; p++) {
    const previous = p === 0 ? points[points.length - 1]![0] - 2 ** 32 : points[p - 1]![0];
    share[points[p]![1]] += points[p]![0] - previous;
  }
  return Math.max(...share) / (2 ** 32 / addresses.length);
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function main(): void {
  const n = Number(process.argv[2] ?? 1000);
  const sets = Number(process.argv[3] ?? 10);
  const members = randomAddresses(n).map((key) => ({ key, weight: 1 }));
  const builds: number[] = [];
  for (let r = 0; r < 8; r++) {
    const t0 = cpuMs();
    const ring = new HashRing(members, DEFAULT_VNODES, new VnodeHashes());
    builds.push(cpuMs() - t0);
    if (r === 0) console.log(`${n} members: ${ring.points} points (${ring.vnodesPerMember[0]} per member)`);
  }
  console.log(`ring build, CPU ms: first ${builds[0]!.toFixed(1)}, warm median ${median(builds.slice(1)).toFixed(1)}`);
  for (const perMember of [1000, 262, 131, 65]) {
    const spread: number[] = [];
    for (let s = 0; s < sets; s++) spread.push(peakOverMean(randomAddresses(n), perMember));
    console.log(`${perMember} points per member: peak/mean median ${median(spread).toFixed(3)}, worst of ${sets} ${Math.max(...spread).toFixed(3)}`);
  }
}

main();
