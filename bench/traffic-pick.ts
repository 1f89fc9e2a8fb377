/**
 * `bench/traffic.ts pick`: CPU time per call that `p2c` and `least_request` spend on their own
 * pick path (pick, call started, call ended), over 5 fake endpoints and no traffic rule. The
 * endpoints' own pickers return a fixed result, so the figure is the balancer's work alone:
 * drawing two endpoints, comparing them, and tracking the call (`TrackedPick`).
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import type { EndpointMember, PickerEntry } from "../runtime/balancing/endpoint-balancer";
import { LEAST_REQUEST_DEFAULTS, LeastRequestPicker, leastRequestState } from "../runtime/balancing/lb-least-request";
import { P2C_DEFAULTS, P2cPicker, p2cState } from "../runtime/balancing/lb-p2c";
import { PeakEwma } from "../runtime/balancing/peak-ewma";
import { median } from "./stats";

const { PickResultType } = grpc.experimental;

function entries<S>(state: () => S): PickerEntry<S>[] {
  return ["a", "b", "c", "d", "e"].map((key) => {
    const subchannel = { key } as unknown as experimental.SubchannelInterface;
    const picker: experimental.Picker = { pick: () => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }) };
    const member = { key, leaf: undefined, info: undefined, state: state(), settled: true } as unknown as EndpointMember<S>;
    return { member, info: undefined, picker, ready: true, connecting: false };
  });
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function perCall(picker: experimental.Picker, calls: number): Promise<number> {
  const metadata = new grpc.Metadata();
  const args = { metadata, extraPickInfo: {} };
  const t = cpuMicros();
  for (let i = 0; i < calls; i++) {
    const r = picker.pick(args);
    r.onCallStarted?.();
    r.onCallEnded?.(grpc.status.OK, "", metadata);
    // Let event-loop turns pass now and then, as real calls do (unstarted picks are released per turn).
    if ((i & 1023) === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return ((cpuMicros() - t) / calls) * 1000;
}

export async function pickBench(): Promise<void> {
  const pickers: [string, experimental.Picker][] = [
    ["p2c", new P2cPicker(entries(() => ({ ...p2cState(new PeakEwma(P2C_DEFAULTS, performance.now())), wasReady: true })), undefined, P2C_DEFAULTS)],
    ["least_request", new LeastRequestPicker(entries(leastRequestState), undefined, LEAST_REQUEST_DEFAULTS)],
  ];
  console.log("pick: balancer pick path (pick + call started + call ended), 5 fake endpoints, no rule; CPU time per call, 7 runs of 200,000");
  for (const [name, picker] of pickers) {
    await perCall(picker, 100_000); // warm-up
    const runs: number[] = [];
    for (let run = 0; run < 7; run++) runs.push(await perCall(picker, 200_000));
    console.log(`  ${name.padEnd(13)} median ${median(runs).toFixed(0)} ns  runs ${runs.map((x) => x.toFixed(0)).join(", ")}`);
  }
}
