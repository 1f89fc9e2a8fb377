/**
 * Scenarios 1 and 2: unary echo of 100-byte messages at concurrency 1 and 100.
 * protomesh (full stack: generated client, `etcd:///` resolver, round_robin, default
 * interceptors, tracing off) against raw grpc-js at a static address and nice-grpc; then
 * protomesh with consistent_hash (a key per call) and with tracing on. A diagnostic split
 * (full run only) pairs each library's client with the other's server to show which side
 * a difference comes from. Besides throughput and latency, every window reports the CPU
 * time per call of the client and of the server process: on a noisy machine that is the
 * steadier measure of what a library costs.
 */
import type { BenchContext } from "./context";
import type { UnaryArgs } from "./echo-client";
import { ECHO_SERVICE, SAMPLED_ECHO_SERVICE, SAMPLE_RATIO, TRACED_ECHO_SERVICE, measure, rotate, type Contender, type EchoFleet, type WithServerCpu } from "./echo-fleet";
import type { UnaryResult } from "./load";
import { int, ms, pct, table, times, type GoalCheck, type Section } from "./report";
import { median, ratios } from "./stats";

const PAYLOAD_BYTES = 100;

export type Measured = WithServerCpu<UnaryResult>;
export type Results = Map<string, Measured[]>;

export function unaryContenders(fleet: EchoFleet): { main: Contender[]; split: Contender[] } {
  const a = fleet.addresses;
  return {
    main: [
      { id: "raw", label: "raw grpc-js (static address)", client: "raw", server: "raw", target: { address: a.raw } },
      { id: "protomesh", label: "protomesh (etcd:///, round_robin)", client: "protomesh", server: "protomesh", target: { service: ECHO_SERVICE, balancer: "round_robin" } },
      { id: "nice", label: "nice-grpc (static address)", client: "nice", server: "nice", target: { address: a.nice } },
      { id: "protomesh-ch", label: "protomesh, consistent_hash, key per call", client: "protomesh", server: "protomesh", target: { service: ECHO_SERVICE, balancer: "consistent_hash" } },
      { id: "protomesh-traced", label: "protomesh, tracing on (both sides)", client: "traced", server: "traced", target: { service: TRACED_ECHO_SERVICE, balancer: "round_robin" } },
      { id: "protomesh-sampled", label: `protomesh, tracing on, ${SAMPLE_RATIO * 100} % sampled`, client: "sampled", server: "sampled", target: { service: SAMPLED_ECHO_SERVICE, balancer: "round_robin" } },
      { id: "otel-raw", label: "raw grpc-js + @opentelemetry/instrumentation-grpc (both sides)", client: "otel-raw", server: "otel-raw", target: { address: fleet.addresses["otel-raw"] } },
    ],
    split: [
      { id: "pm-client-raw-server", label: "protomesh client → raw grpc-js server", client: "protomesh", server: "raw", target: { address: a.raw } },
      { id: "raw-client-pm-server", label: "raw grpc-js client → protomesh server", client: "raw", server: "protomesh", target: { address: a.protomesh } },
      { id: "pm-static", label: "protomesh client (static address) → protomesh server", client: "protomesh", server: "protomesh", target: { address: a.protomesh } },
    ],
  };
}

export async function runWindow(fleet: EchoFleet, c: Contender, concurrency: number, warmupMs: number, durationMs: number, payloadBytes = PAYLOAD_BYTES): Promise<Measured> {
  const args: UnaryArgs = { target: c.target, payloadBytes, window: { concurrency, warmupMs, durationMs } };
  const result = await measure<UnaryResult>(fleet, c, "unary", args);
  if (result.calls === 0) throw new Error(`${c.label}: no call completed at concurrency ${concurrency}${result.firstError ? `: ${result.firstError}` : ""}`);
  return result;
}

export async function runUnary(ctx: BenchContext, fleet: EchoFleet): Promise<Section[]> {
  const { main, split } = unaryContenders(fleet);
  const concurrencies = [1, 100];
  const all = [...main, ...(ctx.quick ? [] : split)];
  // Connect, resolve and warm the JIT of every contender before anything counts.
  ctx.log("unary: warming up");
  for (const c of all) {
    await fleet.clients[c.client].call("ready", { target: c.target, timeoutMs: 15_000 });
    await runWindow(fleet, c, 100, 0, ctx.quick ? 200 : 1500);
  }

  const results = new Map<number, Results>(concurrencies.map((n) => [n, new Map()]));
  for (let round = 0; round < ctx.rounds; round++) {
    for (const concurrency of concurrencies) {
      const contenders = concurrency === 100 ? all : main;
      for (const c of rotate(contenders, round)) {
        const r = await runWindow(fleet, c, concurrency, ctx.warmupMs, ctx.windowMs);
        const list = results.get(concurrency)!.get(c.id) ?? [];
        list.push(r);
        results.get(concurrency)!.set(c.id, list);
      }
    }
    ctx.log(`unary: round ${round + 1}/${ctx.rounds} done`);
  }
  return [scenario1(ctx, main, results), scenario2(main, results), ...(ctx.quick ? [] : [splitSection([...main.slice(0, 2), ...split], results.get(100)!)])];
}

const clientCpu = (r: Measured) => r.cpuMicros / r.totalCalls;
const serverCpu = (r: Measured) => r.serverCpuMicros / r.totalCalls;

/** Medians over rounds of a contender's figures, and medians of its per-round ratios to `base`. */
export function summarize(own: Measured[], base: Measured[]) {
  const of = (f: (r: Measured) => number) => ({ value: median(own.map(f)), ratio: median(ratios(own.map(f), base.map(f))) });
  return {
    rate: of((r) => r.rate),
    p50: of((r) => r.p50Ms),
    p99: of((r) => r.p99Ms),
    clientCpu: of(clientCpu),
    serverCpu: of(serverCpu),
    errors: own.reduce((n, r) => n + r.errors, 0),
  };
}

export function comparisonTable(contenders: Contender[], results: Results, baseId: string): string {
  const base = results.get(baseId)!;
  return table(
    ["contender", "req/s", "p50 ms", "p99 ms", "client CPU µs/call", "server CPU µs/call", "req/s vs raw", "p50 vs raw", "p99 vs raw", "client CPU vs raw", "server CPU vs raw", "errors"],
    contenders
      .filter((c) => results.has(c.id))
      .map((c) => {
        const s = summarize(results.get(c.id)!, base);
        return [
          c.label,
          int(s.rate.value),
          ms(s.p50.value),
          ms(s.p99.value),
          s.clientCpu.value.toFixed(0),
          s.serverCpu.value.toFixed(0),
          times(s.rate.ratio),
          times(s.p50.ratio),
          times(s.p99.ratio),
          times(s.clientCpu.ratio),
          times(s.serverCpu.ratio),
          s.errors,
        ];
      }),
  );
}

function scenario1(ctx: BenchContext, main: Contender[], results: Map<number, Results>): Section {
  const shown = main.filter((c) => ["raw", "protomesh", "nice"].includes(c.id));
  const body: string[] = [];
  const goals: GoalCheck[] = [];
  for (const [concurrency, res] of results) {
    body.push(`Concurrency ${concurrency} (${ctx.rounds} rounds of ${ctx.windowMs / 1000} s, medians; ratios are medians of per-round ratios):`);
    body.push(comparisonTable(shown, res, "raw"));
    body.push(gcTable(shown, res));
    const pm = summarize(res.get("protomesh")!, res.get("raw")!);
    const vsNice = median(ratios(res.get("protomesh")!.map((r) => r.rate), res.get("nice")!.map((r) => r.rate)));
    goals.push(
      { goal: `c=${concurrency}: throughput ≥ 0.95× raw`, measured: `${times(pm.rate.ratio)} (${pct(pm.rate.ratio)})`, met: pm.rate.ratio >= 0.95 },
      { goal: `c=${concurrency}: p50 ≤ 1.05× raw`, measured: `${times(pm.p50.ratio)} (${pct(pm.p50.ratio)})`, met: pm.p50.ratio <= 1.05 },
      { goal: `c=${concurrency}: p99 ≤ 1.05× raw`, measured: `${times(pm.p99.ratio)} (${pct(pm.p99.ratio)})`, met: pm.p99.ratio <= 1.05 },
      { goal: `c=${concurrency}: ahead of nice-grpc`, measured: `protomesh/nice-grpc throughput ${times(vsNice)}`, met: vsNice > 1 },
    );
  }
  return { title: "1. Unary echo, 100 B", body, goals, data: Object.fromEntries([...results].map(([c, r]) => [c, Object.fromEntries(r)])) };
}

/** Garbage-collection pauses in each window, both processes: what sets a high percentile at load. */
function gcTable(contenders: Contender[], res: Results): string {
  const perThousand = (r: Measured, v: number) => (v * 1000) / r.totalCalls;
  return table(
    ["GC pauses (median over rounds)", "server pauses per 1,000 calls", "server GC ms per 1,000 calls", "server longest pause ms", "client GC ms per 1,000 calls", "client longest pause ms"],
    contenders
      .filter((c) => res.has(c.id))
      .map((c) => {
        const own = res.get(c.id)!;
        return [
          c.label,
          median(own.map((r) => perThousand(r, r.serverGc.count))).toFixed(2),
          ms(median(own.map((r) => perThousand(r, r.serverGc.totalMs)))),
          ms(median(own.map((r) => r.serverGc.maxMs))),
          ms(median(own.map((r) => perThousand(r, r.clientGc.totalMs)))),
          ms(median(own.map((r) => r.clientGc.maxMs))),
        ];
      }),
  );
}

function scenario2(main: Contender[], results: Map<number, Results>): Section {
  const rows: (string | number)[][] = [];
  const label = (id: string) => main.find((c) => c.id === id)!.label;
  for (const [concurrency, res] of results) {
    const base = res.get("protomesh")!;
    for (const id of ["protomesh-ch", "protomesh-traced", "protomesh-sampled"]) {
      const s = summarize(res.get(id)!, base);
      const extraClient = s.clientCpu.value - median(base.map(clientCpu));
      const extraServer = s.serverCpu.value - median(base.map(serverCpu));
      rows.push([
        concurrency,
        label(id),
        int(s.rate.value),
        `${times(s.rate.ratio)} (${pct(s.rate.ratio)})`,
        times(s.p50.ratio),
        times(s.p99.ratio),
        `${extraClient >= 0 ? "+" : ""}${extraClient.toFixed(0)} (${pct(s.clientCpu.ratio)})`,
        `${extraServer >= 0 ? "+" : ""}${extraServer.toFixed(0)} (${pct(s.serverCpu.ratio)})`,
      ]);
    }
  }
  // Tracing priced against the alternative: each traced pair against its own untraced pair, same rounds.
  const priced: (string | number)[][] = [];
  const goals: GoalCheck[] = [];
  for (const [concurrency, res] of results) {
    const cost = (id: string, baseId: string) => {
      const own = res.get(id)!;
      const base = res.get(baseId)!;
      return {
        client: median(own.map((r, i) => clientCpu(r) - clientCpu(base[i]!))),
        server: median(own.map((r, i) => serverCpu(r) - serverCpu(base[i]!))),
        rate: median(ratios(own.map((r) => r.rate), base.map((r) => r.rate))),
        p50: median(ratios(own.map((r) => r.p50Ms), base.map((r) => r.p50Ms))),
      };
    };
    const ours = cost("protomesh-traced", "protomesh");
    const theirs = cost("otel-raw", "raw");
    const sampled = cost("protomesh-sampled", "protomesh");
    const signed = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(1)}`;
    for (const [name, c] of [
      ["protomesh, tracing on, every call sampled (vs protomesh, tracing off)", ours],
      ["raw grpc-js + @opentelemetry/instrumentation-grpc, every call sampled (vs raw grpc-js)", theirs],
      [`protomesh, tracing on, ${SAMPLE_RATIO * 100} % sampled (vs protomesh, tracing off)`, sampled],
    ] as const) {
      priced.push([concurrency, name, signed(c.client), signed(c.server), times(c.rate), times(c.p50)]);
    }
    goals.push(
      { goal: `c=${concurrency}: tracing costs no more than instrumentation-grpc, client µs/call`, measured: `${signed(ours.client)} vs ${signed(theirs.client)}`, met: ours.client <= theirs.client },
      { goal: `c=${concurrency}: tracing costs no more than instrumentation-grpc, server µs/call`, measured: `${signed(ours.server)} vs ${signed(theirs.server)}`, met: ours.server <= theirs.server },
      { goal: `c=${concurrency}: ${SAMPLE_RATIO * 100} % sampled costs ≤ 5 % throughput`, measured: `${times(sampled.rate)} (${pct(sampled.rate)})`, met: sampled.rate >= 0.95 },
    );
  }
  return {
    title: "2. Cost of consistent_hash and of tracing (unary echo, 100 B)",
    body: [
      "Against protomesh with round_robin and tracing off, measured in the same rounds as scenario 1. Tracing on means the OpenTelemetry SDK in both processes (parent-based sampler; every call sampled unless said), spans batched to an exporter that drops them.",
      table(["concurrency", "variant", "req/s", "req/s vs protomesh", "p50 vs protomesh", "p99 vs protomesh", "client CPU µs/call added", "server CPU µs/call added"], rows),
      "Tracing priced against what a raw grpc-js user would run instead: OpenTelemetry's own `@opentelemetry/instrumentation-grpc` on raw grpc-js, with the same SDK set-up, sampler and discarding exporter, in the same rounds. Each traced pair is compared with its own untraced pair (CPU µs per call added: medians of per-round differences).",
      table(["concurrency", "traced pair", "client CPU µs/call added", "server CPU µs/call added", "req/s vs untraced", "p50 vs untraced"], priced),
    ],
    goals,
    data: null,
  };
}

function splitSection(contenders: Contender[], res: Results): Section {
  return {
    title: "Where a difference comes from (concurrency 100, client and server swapped)",
    body: ["Each library's client against the other's server; ratios are to raw grpc-js on both sides in the same round.", comparisonTable(contenders, res, "raw")],
    goals: [],
    data: Object.fromEntries(contenders.map((c) => [c.id, res.get(c.id)])),
  };
}
