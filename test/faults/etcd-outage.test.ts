import { expect } from "chai";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, leasesOf, type Fleet } from "./helpers/fleet";

const TTL = 2;

describe("fault: the whole etcd is down for three lease TTLs, then back", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  before(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  after(() => fleet.close());

  it("keeps calling the last-known instances, re-registers all within TTL + 2 s, and discovers new ones", async () => {
    const ids = ["a", "b", "c"];
    await Promise.all(ids.map((id) => fleet.start(id)));
    const { registry, logger } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.length === 3, 10_000, "holds all three instances");
    const load = startCallLoad(fleet.client(registry));
    await waitFor(() => load.records.length >= 50, { timeoutMs: 10_000, what: "load to be running" });
    const raw = fixture.rawEtcd();
    const leasesBefore = await leasesOf(raw, fleet.namespace);

    const [member] = fixture.etcd.members;
    const downAt = Date.now();
    await member.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 3 * TTL * 1000));
    const callsDuringOutage = load.records.filter((r) => r.startedAt >= downAt).length;
    const failedDuringOutage = load.failures().length;
    expect(view.ids(), "the client's set while etcd is down").to.deep.equal(ids);
    await member.start();
    const backAt = Date.now();

    // Registered again = the key is held by a lease granted after the outage.
    const reRegisteredAt = new Map<string, number>();
    await waitFor(
      async () => {
        const leases = await leasesOf(raw, fleet.namespace);
        for (const id of ids) {
          const lease = leases.get(id);
          if (!reRegisteredAt.has(id) && lease !== undefined && lease !== leasesBefore.get(id)) reRegisteredAt.set(id, Date.now());
        }
        return reRegisteredAt.size === ids.length;
      },
      { timeoutMs: (TTL + 10) * 1000, intervalMs: 50, what: "every instance to be registered again" },
    );
    const slowest = Math.max(...[...reRegisteredAt.values()].map((t) => t - backAt));

    // A new instance, started after the outage, is discovered and called.
    const started = Date.now();
    const d = await fleet.start("d");
    const readyAt = Date.now();
    const reachedAt = await load.reaches(d.id, 15_000);
    await view.until((set) => set.length === 4, 5000, "holds the new instance too");

    // The new leases are kept alive: still in place after another TTL.
    const leasesNow = await leasesOf(raw, fleet.namespace);
    await new Promise((r) => setTimeout(r, (TTL + 0.5) * 1000));
    expect(await leasesOf(raw, fleet.namespace), "leases a TTL later").to.deep.equal(leasesNow);

    const summary = await load.stop();
    printFigures("etcd down 3×TTL", summary, {
      "down (ms)": backAt - downAt,
      "calls while down": callsDuringOutage,
      "failed while down": failedDuringOutage,
      "all re-registered after (ms)": slowest,
      "new instance start (ms)": readyAt - started,
      "new instance called after (ms)": reachedAt - readyAt,
    });

    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
    expect(callsDuringOutage).to.be.greaterThan(100);
    expect(slowest, "slowest re-registration after etcd returned (ms)").to.be.at.most((TTL + 2) * 1000);
    expect(logger.matching("keeping the last-known instances"), "the client said it kept its set").to.have.length.greaterThan(0);
  });
});
