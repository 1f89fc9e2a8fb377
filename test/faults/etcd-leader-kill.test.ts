import { expect } from "chai";
import { Etcd3 } from "etcd3";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, leasesOf, registeredIds, type Fleet } from "./helpers/fleet";

// Long enough that a loaded machine's slow keepalives (a starved process can miss a few seconds
// of them) are not mistaken for what this spec is about: the election itself must lose nothing.
const TTL = 10;

describe("fault: the etcd leader is SIGKILLed in a 3-member cluster", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd({ members: 3 });
  let fleet: Fleet;
  before(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  after(() => fleet.close());

  it("fails no call and keeps every registration, on the same leases, after the new leader is elected", async () => {
    const ids = ["a", "b", "c"];
    await Promise.all(ids.map((id) => fleet.start(id)));
    const { registry } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.length === 3, 10_000, "holds all three instances");
    const load = startCallLoad(fleet.client(registry));
    await waitFor(() => load.records.length >= 50, { timeoutMs: 10_000, what: "load to be running" });

    const leader = await fixture.etcd.leader();
    const survivors = fixture.endpoints.filter((e) => e !== leader.clientUrl);
    const raw = fixture.rawEtcd(survivors);
    const leasesBefore = await leasesOf(raw, fleet.namespace);
    expect([...leasesBefore.keys()]).to.deep.equal(ids);

    // Sample the registrations through the outage: a key missing at any successful read is a lost registration.
    const missing: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const seen = await registeredIds(raw, fleet.namespace).catch(() => undefined);
        if (seen) for (const id of ids) if (!seen.includes(id)) missing.push(id);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // A probe with short deadlines, so the time writes resume is measured, not a probe's timeout.
    const probe = new Etcd3({ hosts: survivors, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 250 }) });
    const killedAt = Date.now();
    await leader.kill("SIGKILL");
    const writableAt = await waitFor(
      async () => {
        await probe.put(`/faults/${fleet.namespace}/probe`).value(String(Date.now())).exec();
        return Date.now();
      },
      { timeoutMs: 15_000, intervalMs: 20, what: "the surviving members to accept writes" },
    ).finally(() => probe.close());
    const newLeader = await fixture.etcd.leader();
    expect(newLeader.name).to.not.equal(leader.name);

    // Hold on for longer than a TTL after the election: keepalives must have gone to the new leader.
    await new Promise((r) => setTimeout(r, (TTL + 1) * 1000));
    sampling = false;
    await sampler;
    const summary = await load.stop();
    const leasesAfter = await leasesOf(raw, fleet.namespace);
    printFigures("etcd leader SIGKILL", summary, {
      "writes resume after (ms)": writableAt - killedAt,
      "registrations kept": `${leasesAfter.size}/${ids.length}`,
    });

    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
    expect(missing, "registrations missing during the election").to.deep.equal([]);
    expect(leasesAfter, "every key on the lease it had before the kill").to.deep.equal(leasesBefore);
    expect(view.ids()).to.deep.equal(ids);
    const served = load.servedSince(writableAt);
    for (const id of ids) expect(served.get(id) ?? 0, `calls served by ${id} after the election`).to.be.greaterThan(0);
  });
});

