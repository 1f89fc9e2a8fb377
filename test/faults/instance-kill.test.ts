import { expect } from "chai";
import { Status } from "protomesh";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, type Fleet } from "./helpers/fleet";

const TTL = 3;
/** Every reply waits this long, so calls are in flight on the instance when it dies. */
const REPLY_DELAY_MS = 100;
const CALLERS = 6;

describe("fault: an instance is SIGKILLed under load", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  beforeEach(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  afterEach(() => fleet.close());

  async function killOneUnderLoad(retry: boolean) {
    const ids = ["a", "b", "c"];
    await Promise.all(ids.map((id) => fleet.start(id, { delayMs: REPLY_DELAY_MS })));
    const { registry } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.length === 3, 10_000, "holds all three instances");
    const load = startCallLoad(fleet.client(registry, { retry }), { concurrency: CALLERS, pauseMs: 5 });
    await waitFor(() => load.servedSince(0).size === 3, { timeoutMs: 10_000, what: "calls on every instance" });

    const victim = fleet.instances.get("b")!;
    // Kill while every caller has a call under way, so the kill lands in the middle of calls.
    await waitFor(() => load.inFlight === CALLERS, { intervalMs: 1, what: "every caller to be in a call" });
    const inFlightAtKill = load.inFlight;
    const killedAt = Date.now();
    victim.kill("SIGKILL");
    await victim.exited;
    const removedAt = await view.until((set) => !set.includes("b"), (TTL + 3) * 1000, "drops the killed instance");
    // Keep calling a while on the two survivors.
    await new Promise((r) => setTimeout(r, 1000));
    const summary = await load.stop();
    const lastFailure = Math.max(0, ...load.failures().map((f) => f.endedAt));
    printFigures(`instance SIGKILL, ${retry ? "retry on" : "no retry"}`, summary, {
      "in flight at kill": inFlightAtKill,
      "last failure after kill (ms)": lastFailure === 0 ? 0 : lastFailure - killedAt,
      "dropped from the set after (ms)": removedAt - killedAt,
    });
    return { load, summary, killedAt, inFlightAtKill };
  }

  it("fails no call when the idempotent method has the retry policy", async () => {
    const { summary, load } = await killOneUnderLoad(true);
    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
  });

  it("without retries fails only the calls in flight at the kill, with UNAVAILABLE", async () => {
    const { load, killedAt, inFlightAtKill } = await killOneUnderLoad(false);
    const failures = load.failures();
    expect(failures.length, "at most one call per caller").to.be.at.most(inFlightAtKill);
    if (failures.length === 0) return;
    // The client learns of the death when the connection drops: every call on it fails in that moment,
    // and no call started after it is sent to the dead instance.
    const learnedAt = Math.min(...failures.map((f) => f.endedAt));
    expect(learnedAt - killedAt, "the client learns of the death within a second").to.be.below(1000);
    for (const f of failures) {
      expect(f.code, f.message).to.equal(Status.UNAVAILABLE);
      expect(f.startedAt, "a failed call was under way when the connection dropped").to.be.at.most(learnedAt);
      expect(f.endedAt - learnedAt, "all of them fail together").to.be.below(100);
    }
  });
});
