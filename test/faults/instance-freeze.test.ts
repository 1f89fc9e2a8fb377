import { expect } from "chai";
import { Status } from "protomesh";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, registeredIds, type Fleet } from "./helpers/fleet";

const TTL = 2;
const CALL_DEADLINE_MS = 800;

describe("fault: an instance is frozen (SIGSTOP) for longer than its TTL, then resumed", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  before(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  after(() => fleet.close());

  it("is removed from etcd and from the client's set, then comes back and serves again", async () => {
    const ids = ["a", "b", "c"];
    await Promise.all(ids.map((id) => fleet.start(id)));
    const { registry } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.length === 3, 10_000, "holds all three instances");
    const load = startCallLoad(fleet.client(registry), { deadlineMs: CALL_DEADLINE_MS });
    await waitFor(() => load.servedSince(0).size === 3, { timeoutMs: 10_000, what: "calls on every instance" });
    const raw = fixture.rawEtcd();
    const frozen = fleet.instances.get("b")!;

    const frozenAt = Date.now();
    frozen.kill("SIGSTOP");
    const removedAt = await view.until((set) => !set.includes("b"), (TTL + 4) * 1000, "drops the frozen instance");
    expect(await registeredIds(raw, fleet.namespace), "keys in etcd while frozen").to.deep.equal(["a", "c"]);
    // Stay frozen a while longer: the instance must find out by itself that it lost its lease.
    await new Promise((r) => setTimeout(r, 1000));
    const resumedAt = Date.now();
    frozen.kill("SIGCONT");
    const backAt = await view.until((set) => set.includes("b"), (TTL + 4) * 1000, "has the resumed instance again");
    const servedAt = await load.reaches("b", 10_000);
    expect(await registeredIds(raw, fleet.namespace)).to.deep.equal(ids);
    await new Promise((r) => setTimeout(r, 500));
    const summary = await load.stop();

    const failures = load.failures();
    printFigures("instance SIGSTOP > TTL", summary, {
      "removed after (ms)": removedAt - frozenAt,
      "frozen (ms)": resumedAt - frozenAt,
      "back in the set after resume (ms)": backAt - resumedAt,
      "serving after resume (ms)": servedAt - resumedAt,
    });
    // Calls sent to the frozen instance before it was dropped time out; none after, none once it is back.
    for (const f of failures) {
      expect(f.code, f.message).to.equal(Status.DEADLINE_EXCEEDED);
      expect(f.startedAt, "a failed call started before the instance was dropped").to.be.at.most(removedAt);
    }
    expect(removedAt - frozenAt, "dropped within TTL + 2 s of the freeze").to.be.at.most((TTL + 2) * 1000);
    expect(backAt - resumedAt, "back within TTL + 2 s of the resume").to.be.at.most((TTL + 2) * 1000);
  });
});
