import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import type { EndpointMember, PickerEntry } from "./endpoint-balancer";
import { LEAST_REQUEST_DEFAULTS, LeastRequestPicker, leastRequestState, parseLeastRequestSettings, type LeastRequestState } from "./lb-least-request";
import { compileTrafficRule } from "./rule-compile";
import { TrafficSelector } from "./traffic-selector";

const { PickResultType } = grpc.experimental;

/** A member whose own picker always completes with a fake subchannel named after it. */
function entry(key: string, options: { version?: string; weight?: number } = {}): PickerEntry<LeastRequestState> {
  const state = leastRequestState();
  const subchannel = { key } as unknown as experimental.SubchannelInterface;
  const picker: experimental.Picker = {
    pick: () => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }),
  };
  const info = { id: key, service: "s", address: key, version: options.version ?? "v1", zone: "z", weight: options.weight ?? 1, metadata: {}, startedAt: 0 };
  const member = { key, leaf: undefined, info, state, settled: true } as unknown as EndpointMember<LeastRequestState>;
  return { member, info, picker, ready: true, connecting: false };
}

const args = (headers: Record<string, string> = {}): experimental.PickArgs => {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return { metadata, extraPickInfo: {} };
};
const keyOf = (r: experimental.PickResult) => (r.subchannel as unknown as { key: string }).key;
const ok = () => new grpc.Metadata();

describe("least_request picker", () => {
  it("of the two endpoints drawn, sends the call to the one with fewer calls outstanding", () => {
    const entries = ["a", "b"].map((k) => entry(k));
    entries[0].member.state.outstanding = 3;
    const picker = new LeastRequestPicker(entries, undefined, LEAST_REQUEST_DEFAULTS);
    const r = picker.pick(args());
    expect(keyOf(r)).to.equal("b");
    expect(entries[1].member.state.outstanding, "counted from the pick").to.equal(1);
    r.onCallStarted?.();
    r.onCallEnded?.(grpc.status.OK, "", ok());
    expect(entries[1].member.state.outstanding, "and given back when the call ends").to.equal(0);
  });

  it("routes around an endpoint whose calls never end (a hung instance) after a few picks", () => {
    const entries = ["hung", "b", "c", "d"].map((k) => entry(k));
    const picker = new LeastRequestPicker(entries, undefined, LEAST_REQUEST_DEFAULTS);
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const r = picker.pick(args());
      const k = keyOf(r);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      r.onCallStarted?.();
      if (k !== "hung") r.onCallEnded?.(grpc.status.OK, "", ok());
    }
    // Its peers end their calls at once, so each stuck call costs it the picks it is drawn for: one stuck call per win.
    expect(counts.get("hung") ?? 0).to.be.within(1, 3);
    expect(entries[0].member.state.outstanding).to.equal(counts.get("hung"));
  });

  it("spreads calls evenly over equal endpoints whose calls stay open (a burst)", () => {
    const entries = ["a", "b", "c", "d", "e"].map((k) => entry(k));
    const picker = new LeastRequestPicker(entries, undefined, LEAST_REQUEST_DEFAULTS);
    for (let i = 0; i < 500; i++) picker.pick(args()).onCallStarted?.();
    const outstanding = entries.map((e) => e.member.state.outstanding);
    expect(outstanding.reduce((a, b) => a + b)).to.equal(500);
    // Two choices keep the spread within a few calls of the mean (100); random placement would not.
    expect(Math.max(...outstanding) - Math.min(...outstanding)).to.be.at.most(4);
  });

  it("with a choice count as large as the fleet, always takes the least loaded endpoint", () => {
    const entries = ["a", "b", "c", "d"].map((k) => entry(k));
    entries.forEach((e, i) => (e.member.state.outstanding = 10 - i)); // d has the fewest
    const picker = new LeastRequestPicker(entries, undefined, { ...LEAST_REQUEST_DEFAULTS, choiceCount: 4 });
    for (let i = 0; i < 50; i++) {
      const r = picker.pick(args());
      expect(keyOf(r)).to.equal("d");
      r.onCallStarted?.();
      r.onCallEnded?.(grpc.status.OK, "", ok());
    }
  });

  it("with unequal weights, compares weight / (outstanding + 1) ^ bias", () => {
    const entries = [entry("heavy", { weight: 4 }), entry("light", { weight: 1 })];
    entries[0].member.state.outstanding = 2; // 4 / 3 > 1 / 1: heavy still wins
    const picker = new LeastRequestPicker(entries, undefined, LEAST_REQUEST_DEFAULTS);
    expect(keyOf(picker.pick(args()))).to.equal("heavy");
    entries[0].member.state.outstanding = 4; // 4 / 5 < 1 / 1
    expect(keyOf(picker.pick(args()))).to.equal("light");
    // A steeper bias makes outstanding calls count for more: 4 / 3² < 1.
    entries[0].member.state.outstanding = 2;
    entries[1].member.state.outstanding = 0; // the pick above counted one on it
    const steep = new LeastRequestPicker(entries, undefined, { ...LEAST_REQUEST_DEFAULTS, activeRequestBias: 2 });
    expect(keyOf(steep.pick(args()))).to.equal("light");
  });

  it("spreads over both of two idle endpoints rather than always the first", () => {
    const entries = ["a", "b"].map((k) => entry(k));
    const picker = new LeastRequestPicker(entries, undefined, LEAST_REQUEST_DEFAULTS);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = picker.pick(args());
      seen.add(keyOf(r));
      r.onCallStarted?.();
      r.onCallEnded?.(grpc.status.OK, "", ok());
    }
    expect([...seen].sort()).to.deep.equal(["a", "b"]);
  });

  it("balances only inside the subset the traffic rule picks", () => {
    const entries = [entry("a"), entry("b"), entry("c", { version: "v2" }), entry("d", { version: "v2" })];
    entries[2].member.state.outstanding = 50; // busier than anything outside the subset, still chosen inside it
    entries[3].member.state.outstanding = 50;
    const rule = compileTrafficRule({ subsets: { v2: { labels: { version: "v2" } } }, routes: [{ match: { headers: { "x-lane": "2" } }, to: [{ subset: "v2" }] }] });
    const picker = new LeastRequestPicker(entries, new TrafficSelector(rule, entries, undefined), LEAST_REQUEST_DEFAULTS);
    const lane2 = new Set<string>();
    const other = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const r = picker.pick(args({ "x-lane": "2" }));
      lane2.add(keyOf(r));
      r.onCallStarted?.();
      r.onCallEnded?.(grpc.status.OK, "", ok());
      const o = picker.pick(args());
      other.add(keyOf(o));
      o.onCallStarted?.();
      o.onCallEnded?.(grpc.status.OK, "", ok());
    }
    expect([...lane2].sort()).to.deep.equal(["c", "d"]);
    expect(other).to.include("a").and.to.include("b");
  });

  it("fails a call with UNAVAILABLE when the subset is empty and the fallback is fail", () => {
    const entries = [entry("a")];
    const rule = compileTrafficRule({ subsets: { v9: { labels: { version: "v9" } } }, routes: [{ to: [{ subset: "v9" }] }], fallback: "fail" });
    const r = new LeastRequestPicker(entries, new TrafficSelector(rule, entries, undefined), LEAST_REQUEST_DEFAULTS).pick(args());
    expect(r.pickResultType).to.equal(PickResultType.TRANSIENT_FAILURE);
    expect(r.status?.code).to.equal(grpc.status.UNAVAILABLE);
  });

  it("validates its settings, naming the option", () => {
    expect(parseLeastRequestSettings(undefined)).to.deep.equal({ choiceCount: 2, activeRequestBias: 1 });
    expect(parseLeastRequestSettings({ choiceCount: 5, activeRequestBias: 0.5 })).to.deep.equal({ choiceCount: 5, activeRequestBias: 0.5 });
    expect(() => parseLeastRequestSettings({ choiceCount: 101 })).to.throw(RangeError, /least_request.choiceCount must be an integer from 2 to 100/);
    expect(() => parseLeastRequestSettings({ activeRequestBias: Number.NaN })).to.throw(RangeError, /activeRequestBias/);
    expect(() => parseLeastRequestSettings("2")).to.throw(TypeError, /expected an object, got string/);
  });
});
