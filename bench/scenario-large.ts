/**
 * Scenario 1b: unary echo of large messages (64 KiB and 1 MiB), where serialization
 * rather than the call's fixed cost sets the pace. protomesh's generated code runs
 * `fromPartial` before every `encode` (handlers and callers may pass partial messages);
 * raw grpc-js with the same ts-proto messages encodes directly.
 */
import type { BenchContext } from "./context";
import { ECHO_SERVICE, rotate, type Contender, type EchoFleet } from "./echo-fleet";
import { pct, times, type GoalCheck, type Section } from "./report";
import { comparisonTable, runWindow, summarize, type Results } from "./scenario-unary";

const SIZES = [
  { bytes: 64 * 1024, label: "64 KiB", concurrency: 10 },
  { bytes: 1024 * 1024, label: "1 MiB", concurrency: 4 },
] as const;

export async function runLargeUnary(ctx: BenchContext, fleet: EchoFleet): Promise<Section> {
  const a = fleet.addresses;
  const contenders: Contender[] = [
    { id: "raw", label: "raw grpc-js (static address)", client: "raw", server: "raw", target: { address: a.raw } },
    { id: "protomesh", label: "protomesh (etcd:///, round_robin)", client: "protomesh", server: "protomesh", target: { service: ECHO_SERVICE, balancer: "round_robin" } },
    { id: "nice", label: "nice-grpc (static address)", client: "nice", server: "nice", target: { address: a.nice } },
  ];
  const results = new Map<number, Results>(SIZES.map((s) => [s.bytes, new Map()]));
  ctx.log("large messages: warming up");
  for (const size of SIZES) for (const c of contenders) await runWindow(fleet, c, size.concurrency, 0, ctx.quick ? 200 : 1000, size.bytes);
  for (let round = 0; round < ctx.rounds; round++) {
    for (const size of SIZES) {
      for (const c of rotate(contenders, round)) {
        const r = await runWindow(fleet, c, size.concurrency, ctx.warmupMs, ctx.windowMs, size.bytes);
        const res = results.get(size.bytes)!;
        res.set(c.id, [...(res.get(c.id) ?? []), r]);
      }
    }
    ctx.log(`large messages: round ${round + 1}/${ctx.rounds} done`);
  }
  const body: string[] = [];
  const goals: GoalCheck[] = [];
  for (const size of SIZES) {
    const res = results.get(size.bytes)!;
    body.push(`${size.label} request and reply, concurrency ${size.concurrency} (${ctx.rounds} rounds of ${ctx.windowMs / 1000} s, medians; ratios are medians of per-round ratios):`);
    body.push(comparisonTable(contenders, res, "raw"));
    const pm = summarize(res.get("protomesh")!, res.get("raw")!);
    goals.push({ goal: `${size.label}: throughput ≥ 0.95× raw`, measured: `${times(pm.rate.ratio)} (${pct(pm.rate.ratio)})`, met: pm.rate.ratio >= 0.95 });
  }
  return { title: "1b. Unary echo, large messages", body, goals, data: Object.fromEntries([...results].map(([b, r]) => [b, Object.fromEntries(r)])) };
}
