import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import type { PickerEntry, EndpointMember } from "./endpoint-balancer";
import { P2C_DEFAULTS, P2cPicker, p2cState, type P2cState } from "./lb-p2c";
import { PeakEwma } from "./peak-ewma";
import { compileTrafficRule } from "./rule-compile";
import { TrafficSelector } from "./traffic-selector";

const { PickResultType } = grpc.experimental;

/** A member whose own picker always completes with a fake subchannel named after it. */
function entry(key: string, version = "v1"): PickerEntry<P2cState> {
  const state: P2cState = { ...p2cState(new PeakEwma(P2C_DEFAULTS, performance.now())), wasReady: true };
  const subchannel = { key } as unknown as experimental.SubchannelInterface;
  const picker: experimental.Picker = {
    pick: () => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }),
  };
  const member = { key, leaf: undefined, info: { id: key, service: "s", address: key, version, zone: "z", weight: 1, metadata: {}, startedAt: 0 }, state, settled: true } as unknown as EndpointMember<P2cState>;
  return { member, info: member.info, picker, ready: true, connecting: false };
}

const args = (headers: Record<string, string> = {}): experimental.PickArgs => {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return { metadata, extraPickInfo: {} };
};
const keyOf = (r: experimental.PickResult) => (r.subchannel as unknown as { key: string }).key;

describe("p2c picker", () => {
  it("avoids an endpoint whose calls pile up (a hung instance) after a few picks", () => {
    const entries = ["a", "b", "c", "d"].map((k) => entry(k));
    const picker = new P2cPicker(entries, undefined, P2C_DEFAULTS);
    const counts = new Map<string, number>();
    // Calls on "a" never end; the others end at once.
    for (let i = 0; i < 2000; i++) {
      const r = picker.pick(args());
      const k = keyOf(r);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      r.onCallStarted?.();
      if (k !== "a") r.onCallEnded?.(grpc.status.OK, "", new grpc.Metadata());
    }
    expect(counts.get("a") ?? 0).to.be.below(40);
    expect(entries[0].member.state.ewma.pending).to.equal(counts.get("a") ?? 0);
  });

  it("avoids a hung endpoint with fewer calls pending than its busy peers, once its calls have been open longer than theirs take", () => {
    const entries = ["hung", "b", "c"].map((k) => entry(k));
    const now = performance.now();
    for (const e of entries) e.member.state.ewma.lastPicked = now + 1e9; // never forced during the test
    // One call has hung on "hung" for 200 ms; its peers are busy, five calls each.
    const hung = entries[0].member.state.ewma;
    hung.pending = 1;
    hung.callOpened(now - 200);
    entries[1].member.state.ewma.pending = 5;
    entries[2].member.state.ewma.pending = 5;
    const picker = new P2cPicker(entries, undefined, P2C_DEFAULTS);
    let toHung = 0;
    for (let i = 0; i < 200; i++) {
      const r = picker.pick(args());
      r.onCallStarted?.();
      if (keyOf(r) === "hung") toHung++;
      else r.onCallEnded?.(grpc.status.OK, "", new grpc.Metadata()); // the peers keep answering
    }
    // All estimates are equal (the 30 ms seed): on them alone "hung" costs 30 × 2 against 30 × 6
    // and would take every pick it is drawn for (≈ 2 in 3).
    expect(toHung).to.equal(0);
    hung.callClosed(now - 200);
    hung.pending = 0;
    let afterRecovery = 0;
    for (let i = 0; i < 200; i++) {
      const r = picker.pick(args());
      r.onCallStarted?.();
      if (keyOf(r) === "hung") afterRecovery++;
      r.onCallEnded?.(grpc.status.OK, "", new grpc.Metadata());
    }
    expect(afterRecovery, "wins again once the call has ended").to.be.above(100);
  });

  it("prefers the endpoint with the lower latency estimate", () => {
    const entries = ["fast", "slow"].map((k) => entry(k));
    const now = performance.now();
    entries[0].member.state.ewma.observe(1, false, now);
    entries[1].member.state.ewma.observe(200, false, now);
    entries[1].member.state.ewma.lastPicked = now + 1e9; // never stale during the test
    const picker = new P2cPicker(entries, undefined, P2C_DEFAULTS);
    let fast = 0;
    for (let i = 0; i < 100; i++) {
      const r = picker.pick(args());
      if (keyOf(r) === "fast") fast++;
      r.onCallStarted?.();
      r.onCallEnded?.(grpc.status.OK, "", new grpc.Metadata());
    }
    expect(fast).to.equal(100);
  });

  it("forces a stale loser with nothing pending through, to refresh its estimate", () => {
    const entries = ["fast", "slow"].map((k) => entry(k));
    const now = performance.now();
    entries[0].member.state.ewma.observe(1, false, now);
    entries[1].member.state.ewma.observe(500, false, now);
    entries[1].member.state.ewma.lastPicked = now - 5000;
    const picker = new P2cPicker(entries, undefined, P2C_DEFAULTS);
    expect(keyOf(picker.pick(args()))).to.equal("slow");
    expect(keyOf(picker.pick(args())), "and only once per forceAfterMs").to.equal("fast");
  });

  it("counts errors against an endpoint, but not cancellations or application errors", () => {
    const [e] = [entry("a")];
    const picker = new P2cPicker([e], undefined, P2C_DEFAULTS);
    const end = (code: grpc.status) => {
      const r = picker.pick(args());
      r.onCallStarted?.();
      r.onCallEnded?.(code, "", new grpc.Metadata());
    };
    end(grpc.status.NOT_FOUND);
    end(grpc.status.CANCELLED);
    expect(e.member.state.ewma.latency(performance.now())).to.be.below(P2C_DEFAULTS.failurePenaltyMs);
    end(grpc.status.UNAVAILABLE);
    expect(e.member.state.ewma.latency(performance.now())).to.be.at.least(P2C_DEFAULTS.failurePenaltyMs * 0.99);
  });

  it("balances only inside the subset the traffic rule picks", () => {
    const entries = [entry("a", "v1"), entry("b", "v1"), entry("c", "v2"), entry("d", "v2")];
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ match: { headers: { "x-lane": "2" } }, to: [{ subset: "v2" }] }] });
    const picker = new P2cPicker(entries, new TrafficSelector(rule, entries, undefined), P2C_DEFAULTS);
    const lane2 = new Set<string>();
    const other = new Set<string>();
    for (let i = 0; i < 200; i++) {
      lane2.add(keyOf(picker.pick(args({ "x-lane": "2" }))));
      other.add(keyOf(picker.pick(args())));
    }
    expect([...lane2].sort()).to.deep.equal(["c", "d"]);
    expect([...other].sort()).to.deep.equal(["a", "b", "c", "d"]);
  });

  it("fails a call with UNAVAILABLE when the subset is empty and the fallback is fail", () => {
    const entries = [entry("a", "v1")];
    const rule = compileTrafficRule({ subsets: { v9: { labels: { version: "v9" } } }, routes: [{ to: [{ subset: "v9" }] }], fallback: "fail" });
    const r = new P2cPicker(entries, new TrafficSelector(rule, entries, undefined), P2C_DEFAULTS).pick(args());
    expect(r.pickResultType).to.equal(PickResultType.TRANSIENT_FAILURE);
    expect(r.status?.code).to.equal(grpc.status.UNAVAILABLE);
  });
});

describe("peak EWMA", () => {
  it("jumps to a higher latency at once and decays towards lower ones over τ", () => {
    const e = new PeakEwma({ decayMs: 1000, defaultRttMs: 10, failurePenaltyMs: 100 }, 0);
    e.observe(50, false, 0);
    expect(e.latency(0)).to.equal(50);
    e.observe(10, false, 1); // 1 ms later: almost no weight for the new sample
    expect(e.latency(1)).to.be.above(49);
    expect(e.latency(1001)).to.be.closeTo(50 * Math.exp(-1), 0.5);
    e.pending = 3;
    expect(e.load(1)).to.be.closeTo(4 * e.latency(1), 1e-9);
  });

  it("costs at least the mean age of the calls still open, and forgets them once they end", () => {
    const e = new PeakEwma({ decayMs: 1000, defaultRttMs: 10, failurePenaltyMs: 100 }, 0);
    e.observe(50, false, 290);
    e.pending = 2;
    e.callOpened(290);
    e.callOpened(300);
    expect(e.load(301), "young calls: the estimate rules").to.be.closeTo(3 * e.latency(301), 1e-9);
    expect(e.load(1300), "mean age (1,005 ms) above the estimate").to.be.closeTo(3 * 1005, 1e-9);
    e.callClosed(290);
    e.pending = 1;
    expect(e.load(1300)).to.be.closeTo(2 * 1000, 1e-9);
    e.callClosed(300);
    e.pending = 0;
    expect(e.load(1300)).to.be.closeTo(e.latency(1300), 1e-9);
  });
});
