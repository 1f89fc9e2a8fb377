import { expect } from "chai";
import { Etcd3 } from "etcd3";
import { startEmbeddedEtcd, type EmbeddedEtcd } from "../registry/etcd/embedded";
import { waitFor } from "./helpers/wait";

function clientOf(endpoints: string[]): Etcd3 {
  return new Etcd3({ hosts: endpoints, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
}

describe("embedded etcd", function () {
  this.timeout(40_000);
  let etcd: EmbeddedEtcd | undefined;
  afterEach(async () => {
    await etcd?.stop();
    etcd = undefined;
  });

  it("says what to install when the etcd binary is missing", async () => {
    let message = "";
    await startEmbeddedEtcd({ binary: "/nonexistent/etcd" }).catch((e: Error) => (message = e.message));
    expect(message).to.match(/install Debian's etcd-server/);
  });

  it("starts one member on a free port and keeps its data across restart()", async () => {
    etcd = await startEmbeddedEtcd();
    expect(etcd.endpoints).to.have.length(1);
    const before = clientOf(etcd.endpoints);
    await before.put("k").value("v");
    before.close();
    await etcd.restart();
    const after = clientOf(etcd.endpoints);
    expect(await after.get("k").string()).to.equal("v");
    after.close();
  });

  it("runs a 3-member cluster that survives losing its leader", async () => {
    etcd = await startEmbeddedEtcd({ members: 3 });
    expect(etcd.members.map((m) => m.name)).to.deep.equal(["m1", "m2", "m3"]);
    const leader = await etcd.leader();
    await leader.kill("SIGKILL");
    expect(leader.running).to.equal(false);
    // A survivor must take over. Ask until one does (bounded): right after the kill, a
    // survivor can still name the old leader, and twice under concurrent CI load the first
    // answer named the killed member itself.
    const next = await waitFor(
      async () => {
        const l = await etcd!.leader();
        return l.name !== leader.name && l.running ? l : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: "a surviving member to lead" },
    );
    expect(next.name).to.not.equal(leader.name);
    const others = etcd.members.filter((m) => m !== leader).map((m) => m.clientUrl);
    const client = clientOf(others);
    await client.put("after-failover").value("ok");
    await leader.start();
    expect(leader.running).to.equal(true);
    client.close();
  });
});
