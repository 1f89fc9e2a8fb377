import { expect } from "chai";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, registeredIds, type Fleet } from "./helpers/fleet";

const TTL = 3;

describe("fault: etcd compacts the history that clients' watches still need", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  let proxy: TcpProxy;
  before(async () => {
    fleet = createFleet(() => fixture.endpoints, TTL);
    proxy = await startTcpProxy(fixture.endpoints[0]);
  });
  after(async () => {
    await fleet.close();
    await proxy.close();
  });

  it("leaves every client's endpoint set equal to etcd's", async () => {
    await Promise.all(["a", "b"].map((id) => fleet.start(id)));
    // Two clients watch through a proxy that can cut them off from etcd; the instances reach etcd directly.
    const watchers = [fleet.registry([proxy.endpoint]), fleet.registry([proxy.endpoint])];
    const views = watchers.map(({ registry }) => fleet.follow(registry));
    for (const view of views) await view.until((set) => set.join() === "a,b", 10_000, "holds a and b");
    const load = startCallLoad(fleet.client(watchers[0].registry));
    await waitFor(() => load.servedSince(0).size === 2, { timeoutMs: 10_000, what: "calls on both instances" });
    const raw = fixture.rawEtcd();
    const compactAt = async () => {
      const { header } = await raw.kv.put({ key: Buffer.from(`/faults/${fleet.namespace}/tick`), value: Buffer.from("x") });
      await raw.kv.compact({ revision: header.revision, physical: true });
      return header.revision;
    };

    // Compaction under watches that are in sync changes nothing.
    await compactAt();
    await new Promise((r) => setTimeout(r, 300));
    for (const view of views) expect(view.ids()).to.deep.equal(["a", "b"]);

    // Cut the clients off, change the fleet, and compact away the changes they missed.
    proxy.cut();
    await fleet.instances.get("a")!.stop();
    await Promise.all(["c", "d"].map((id) => fleet.start(id)));
    const compactedTo = await compactAt();
    for (const view of views) expect(view.ids(), "sets while cut off: last known").to.deep.equal(["a", "b"]);
    const restoredAt = Date.now();
    proxy.restore();

    const inEtcd = await registeredIds(raw, fleet.namespace);
    expect(inEtcd).to.deep.equal(["b", "c", "d"]);
    const syncedAt = await Promise.all(views.map((view) => view.until((set) => set.join() === inEtcd.join(), 15_000, "equals etcd's")));
    await Promise.all(["c", "d"].map((id) => load.reaches(id, 10_000)));
    const summary = await load.stop();
    const relists = watchers.map(({ logger }) => logger.matching("fell behind etcd compaction").length);
    printFigures("watch compaction", summary, {
      "compacted to revision": compactedTo,
      "sets equal etcd's after reconnect (ms)": Math.max(...syncedAt) - restoredAt,
      relists: relists.join("+"),
    });

    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
    for (const n of relists) expect(n, "each client relisted after compaction").to.be.at.least(1);
    for (const view of views) expect(view.ids()).to.deep.equal(await registeredIds(raw, fleet.namespace));
  });
});
