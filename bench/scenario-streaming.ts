/**
 * Scenario 3: server streaming of 1 KiB messages. Each contender keeps a few streams
 * open back to back (each `PER_STREAM` messages long) and counts messages received.
 */
import type { BenchContext } from "./context";
import type { StreamArgs } from "./echo-client";
import { ECHO_SERVICE, UNSCOPED_ECHO_SERVICE, measure, rotate, type Contender, type EchoFleet, type WithServerCpu } from "./echo-fleet";
import type { StreamResult } from "./load";
import { int, pct, table, times, type Section } from "./report";
import { median, ratios } from "./stats";

const PAYLOAD_BYTES = 1024;
const PER_STREAM = 1000;
const STREAMS = 4;

export async function runStreaming(ctx: BenchContext, fleet: EchoFleet): Promise<Section> {
  const a = fleet.addresses;
  const contenders: Contender[] = [
    { id: "raw", label: "raw grpc-js (static address)", client: "raw", server: "raw", target: { address: a.raw } },
    { id: "protomesh", label: "protomesh (etcd:///, round_robin)", client: "protomesh", server: "protomesh", target: { service: ECHO_SERVICE, balancer: "round_robin" } },
    { id: "nice", label: "nice-grpc (static address)", client: "nice", server: "nice", target: { address: a.nice } },
    // Where a difference comes from: each side swapped for raw grpc-js, and the resolver taken out.
    { id: "pm-client-raw-server", label: "protomesh client → raw grpc-js server", client: "protomesh", server: "raw", target: { address: a.raw } },
    { id: "raw-client-pm-server", label: "raw grpc-js client → protomesh server", client: "raw", server: "protomesh", target: { address: a.protomesh } },
    { id: "pm-static", label: "protomesh client (static address) → protomesh server", client: "protomesh", server: "protomesh", target: { address: a.protomesh } },
    // The server without its call scope (`callScope: false`): Node 20's AsyncLocalStorage cost, isolated.
    { id: "pm-unscoped", label: "protomesh, server with callScope: false (etcd:///, round_robin)", client: "protomesh", server: "unscoped", target: { service: UNSCOPED_ECHO_SERVICE, balancer: "round_robin" } },
    // The same server behind the raw client: with the client fixed, the row compares servers alone.
    { id: "raw-client-unscoped", label: "raw grpc-js client → protomesh server with callScope: false", client: "raw", server: "unscoped", target: { address: a.unscoped } },
  ];
  const run = async (c: Contender, warmupMs: number, durationMs: number) => {
    const args: StreamArgs = { target: c.target, payloadBytes: PAYLOAD_BYTES, perStream: PER_STREAM, window: { concurrency: STREAMS, warmupMs, durationMs } };
    const r = await measure<StreamResult>(fleet, c, "stream", args);
    if (r.messages === 0) throw new Error(`${c.label}: no message received${r.firstError ? `: ${r.firstError}` : ""}`);
    return r;
  };
  ctx.log("streaming: warming up");
  for (const c of contenders) {
    await fleet.clients[c.client].call("ready", { target: c.target, timeoutMs: 15_000 });
    await run(c, 0, ctx.quick ? 200 : 1000);
  }
  const results = new Map<string, WithServerCpu<StreamResult>[]>(contenders.map((c) => [c.id, []]));
  for (let round = 0; round < ctx.rounds; round++) {
    for (const c of rotate(contenders, round)) results.get(c.id)!.push(await run(c, ctx.warmupMs, ctx.windowMs));
    ctx.log(`streaming: round ${round + 1}/${ctx.rounds} done`);
  }
  const rawRuns = results.get("raw")!;
  const base = rawRuns.map((r) => r.rate);
  const clientCpu = (r: WithServerCpu<StreamResult>) => r.cpuMicros / r.totalMessages;
  const serverCpu = (r: WithServerCpu<StreamResult>) => r.serverCpuMicros / r.totalMessages;
  const rows = contenders.map((c) => {
    const own = results.get(c.id)!;
    const rate = own.map((r) => r.rate);
    const ratio = median(ratios(rate, base));
    return [
      c.label,
      int(median(rate)),
      `${((median(rate) * PAYLOAD_BYTES) / 2 ** 20).toFixed(1)} MiB/s`,
      `${times(ratio)} (${pct(ratio)})`,
      `${median(own.map(clientCpu)).toFixed(2)} (${times(median(ratios(own.map(clientCpu), rawRuns.map(clientCpu))))})`,
      `${median(own.map(serverCpu)).toFixed(2)} (${times(median(ratios(own.map(serverCpu), rawRuns.map(serverCpu))))})`,
      own.reduce((n, r) => n + r.errors, 0),
    ];
  });
  const pmRatio = median(ratios(results.get("protomesh")!.map((r) => r.rate), base));
  return {
    title: "3. Server streaming, 1 KiB messages",
    body: [
      `${STREAMS} concurrent streams of ${PER_STREAM.toLocaleString("en-US")} messages each, reopened as they end; ${ctx.rounds} rounds of ${ctx.windowMs / 1000} s, medians.`,
      table(["contender", "messages/s", "payload", "messages/s vs raw", "client CPU µs/message (vs raw)", "server CPU µs/message (vs raw)", "errors"], rows),
    ],
    goals: [{ goal: "streaming messages/s ≥ 0.95× raw", measured: `${times(pmRatio)} (${pct(pmRatio)})`, met: pmRatio >= 0.95 }],
    data: Object.fromEntries(results),
  };
}
