import { expect } from "chai";
import { createClient } from "protomesh";
import { GreeterDefinition, startGreeter, delay } from "../helpers/greeter";
import { useEmbeddedEtcd } from "../helpers/etcd";
import { waitFor } from "../helpers/wait";
import { printFigures, startCallLoad } from "./helpers/call-load";
import { createFleet, type Fleet } from "./helpers/fleet";

const TTL = 3;
/** Replies take a little while, so every drain has calls to finish. */
const REPLY_DELAY_MS = 30;

describe("fault: a rolling restart of three instances, one at a time, graceful", function () {
  this.timeout(240_000);
  const fixture = useEmbeddedEtcd();
  let fleet: Fleet;
  before(() => {
    fleet = createFleet(() => fixture.endpoints, TTL);
  });
  after(() => fleet.close());

  it("fails no call, with no retry policy", async () => {
    await Promise.all(["a1", "b1", "c1"].map((id) => fleet.start(id, { delayMs: REPLY_DELAY_MS })));
    const { registry } = fleet.registry();
    const view = fleet.follow(registry);
    await view.until((set) => set.length === 3, 10_000, "holds all three instances");
    const load = startCallLoad(fleet.client(registry), { concurrency: 6, pauseMs: 5 });
    await waitFor(() => load.servedSince(0).size === 3, { timeoutMs: 10_000, what: "calls on every instance" });

    const steps: number[] = [];
    const t0 = Date.now();
    for (const [old, next] of [["a1", "a2"], ["b1", "b2"], ["c1", "c2"]]) {
      const stepAt = Date.now();
      await fleet.instances.get(old)!.stop();
      await fleet.start(next, { delayMs: REPLY_DELAY_MS });
      await load.reaches(next, 10_000);
      steps.push(Date.now() - stepAt);
    }
    const rolledIn = Date.now() - t0;
    await view.until((set) => set.join() === "a2,b2,c2", 5000, "holds exactly the new instances");
    await new Promise((r) => setTimeout(r, 500));
    const summary = await load.stop();
    printFigures("rolling restart", summary, { "whole restart (ms)": rolledIn, "slowest step (ms)": Math.max(...steps) });

    expect(summary.failed, JSON.stringify(load.failures().slice(0, 5))).to.equal(0);
  });

  it("fails no call on a client dialing fixed addresses, which learns of the drain only from the server", async () => {
    // No registry to announce the drain: the client meets the server's GOAWAY and refused streams head-on.
    const reply = (servedBy: string) => async () => {
      await delay(REPLY_DELAY_MS);
      return { message: "hi", servedBy };
    };
    const steady = await startGreeter({ sayHello: reply("steady") });
    let summaryCalls = 0;
    const failures: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        const draining = await startGreeter({ sayHello: reply(`draining-${round}`) });
        const client = createClient(GreeterDefinition, `ipv4:${steady.address},${draining.address}`);
        const load = startCallLoad(client, { concurrency: 8, pauseMs: 0 });
        await load.reaches(`draining-${round}`, 5000);
        await draining.server.shutdown({ graceMs: 2000 });
        await delay(100);
        const summary = await load.stop();
        client.$close();
        summaryCalls += summary.calls;
        failures.push(...load.failures().map((f) => f.message ?? ""));
      }
    } finally {
      await steady.server.shutdown({ graceMs: 100 });
    }
    process.stdout.write(`      [drain, fixed addresses] calls ${summaryCalls} · failed ${failures.length} over 5 drains\n`);
    expect(failures).to.deep.equal([]);
  });
});
