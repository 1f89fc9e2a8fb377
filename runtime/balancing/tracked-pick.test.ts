import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { TrackedPick, type CallObserver } from "./tracked-pick";

const { PickResultType } = grpc.experimental;

/** An observer that records what it hears. */
function recorder() {
  const r = { count: 0, opened: [] as number[], closed: [] as { code: grpc.status; pickedAt: number; openedAt: number }[] };
  const observer: CallObserver = {
    claim: () => void r.count++,
    release: () => void r.count--,
    opened: (at) => void r.opened.push(at),
    closed: (code, pickedAt, openedAt) => void r.closed.push({ code, pickedAt, openedAt }),
  };
  return { r, observer };
}

function child(log: string[]): experimental.PickResult {
  const subchannel = { key: "s" } as unknown as experimental.SubchannelInterface;
  return { pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: () => log.push("started"), onCallEnded: (code) => log.push(`ended ${code}`) };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("tracked pick", () => {
  it("counts a call from its pick to its end, reports its start and end once, and runs the child's callbacks", () => {
    const { r, observer } = recorder();
    const log: string[] = [];
    const pick = new TrackedPick(child(log), observer, 7);
    expect(pick.pickResultType).to.equal(PickResultType.COMPLETE);
    expect(r.count, "counted at the pick").to.equal(1);
    pick.onCallStarted();
    expect(r.count).to.equal(1);
    expect(r.opened).to.have.length(1);
    pick.onCallEnded(grpc.status.OK, "", new grpc.Metadata());
    pick.onCallEnded(grpc.status.OK, "", new grpc.Metadata()); // a second end changes nothing
    expect(r.count).to.equal(0);
    expect(r.closed).to.deep.equal([{ code: grpc.status.OK, pickedAt: 7, openedAt: r.opened[0] }]);
    expect(log).to.deep.equal(["started", "ended 0", "ended 0"]);
  });

  it("gives the count back when the call has not started by the next turn, and counts it again if it starts later", async () => {
    const { r, observer } = recorder();
    const pick = new TrackedPick(child([]), observer, 0);
    const never = new TrackedPick(child([]), observer, 0);
    expect(r.count).to.equal(2);
    await nextTurn();
    expect(r.count, "both released").to.equal(0);
    pick.onCallStarted(); // slow call credentials: starts after all
    expect(r.count).to.equal(1);
    pick.onCallEnded(grpc.status.UNAVAILABLE, "", new grpc.Metadata());
    never.onCallEnded(grpc.status.CANCELLED, "", new grpc.Metadata()); // released already: not given back twice
    expect(r.count).to.equal(0);
    expect(r.closed.map((c) => c.openedAt >= 0)).to.deep.equal([true, false]);
  });

  it("keeps one call's count right when a wrapping policy copies the pick ({ ...pick }, as grpc-js's outlier detection does)", async () => {
    const { r, observer } = recorder();
    const copy: experimental.PickResult = { ...new TrackedPick(child([]), observer, 0) };
    expect(copy.pickResultType).to.equal(PickResultType.COMPLETE);
    expect(copy.subchannel).to.not.equal(null);
    copy.onCallStarted!();
    await nextTurn();
    expect(r.count, "a started call is not released at the turn").to.equal(1);
    copy.onCallEnded!(grpc.status.OK, "", new grpc.Metadata());
    expect(r.count).to.equal(0);
  });
});
