import { expect } from "chai";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { ReleaseController } from "../release/controller/controller";
import { ReleaseStateStore } from "../release/controller/state-store";
import { trafficRuleKey } from "../release/controller/rule-store";
import type { ReleaseState } from "../release/state";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { release, startFleet, type GreeterFleet } from "./helpers/release-fixture";
import { RuleFollowingLoad } from "./helpers/rule-following-load";
import { waitFor } from "./helpers/wait";
import { silentLogger } from "./helpers/release-logger";

describe("canary releases (real etcd, two versions, load through the rule)", function () {
  this.timeout(120_000);
  const fixture = useEmbeddedEtcd();
  let namespace: string;
  let fleet: GreeterFleet | undefined;
  let load: RuleFollowingLoad | undefined;
  const controllers: ReleaseController[] = [];

  beforeEach(() => {
    namespace = uniqueNamespace();
  });
  afterEach(async () => {
    await load?.stop();
    load = undefined;
    await Promise.all(controllers.splice(0).map((c) => c.stop()));
    await fleet?.close();
    fleet = undefined;
  });

  const store = () => new ReleaseStateStore(fixture.rawEtcd(), namespace);
  const controller = async () => {
    const client = createEtcdClient(resolveEtcdOptions({ endpoints: fixture.endpoints, namespace }));
    const c = new ReleaseController({ client, namespace, leaseTtlSeconds: 2, tickMs: 200, logger: silentLogger() });
    await c.start();
    controllers.push(c);
    return c;
  };
  const phase = (want: ReleaseState["phase"], timeoutMs = 60_000) =>
    waitFor(async () => {
      const s = (await store().get("greeter"))?.state;
      return s?.phase === want ? s : undefined;
    }, { timeoutMs, intervalMs: 100, what: `release phase ${want}` });
  const startLoad = async () => {
    load = new RuleFollowingLoad(fixture.rawEtcd(), trafficRuleKey(namespace, "greeter"), fleet!.instances.map((i) => i.instance));
    await load.start(3, 4);
    return load;
  };

  it("promotes a good canary step by step on its own, with no failed call", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    const l = await startLoad();
    const started = await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "20,50,100", "--interval", "2s", "--count", "1", "--min-requests", "5");
    expect(started.code, started.err).to.equal(0);
    await controller();
    const done = await phase("Succeeded");
    expect(done.analysisRuns.map((r) => r.outcome)).to.deep.equal(["passed", "passed"]);
    expect(done.events.map((e) => e.text).filter((t) => t.startsWith("weight"))).to.deep.equal(["weight 20 %", "weight 50 %", "weight 100 %"]);
    // Once every caller holds the promoted rule, only v2 answers.
    await waitFor(() => l.descriptions().every((d) => d.includes("promoted")), { timeoutMs: 10_000, what: "every caller on the promoted rule" });
    const since = Math.max(...l.changeTimes());
    const n = l.calls.length;
    await waitFor(() => l.calls.length > n + 100, { timeoutMs: 20_000, what: "100 more calls" });
    expect(new Set(l.calls.filter((c) => c.at > since).map((c) => c.version))).to.deep.equal(new Set(["v2"]));
    expect(l.calls.filter((c) => !c.ok)).to.have.length(0);
    const status = await release(fixture.endpoints, namespace, "status", "greeter");
    expect(status.out).to.match(/phase\s+Succeeded/);
    const history = await release(fixture.endpoints, namespace, "history", "greeter");
    expect(history.out).to.contain(done.id);
  });

  it("aborts a canary failing 20 % of calls at its first measurement and sends every call back to stable", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2", failShare: 0.2 }]);
    const l = await startLoad();
    const intervalMs = 2000;
    const started = await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "50,100", "--interval", "2s", "--count", "3", "--min-requests", "5");
    expect(started.code, started.err).to.equal(0);
    await controller();
    const degraded = await phase("Degraded");
    const run = degraded.analysisRuns.at(-1)!;
    // Aborted on the first interval's measurement: within one analysis interval of traffic.
    expect(run.measurements).to.have.length(1);
    expect(run.measurements[0]!.verdict).to.equal("Failed");
    const weightAt = degraded.events.find((e) => e.text === "weight 50 %")!.at;
    expect(run.measurements[0]!.at - weightAt).to.be.below(intervalMs * 4, "measured within a few ticks of one interval");
    expect(degraded.weight).to.equal(0);
    await waitFor(() => l.descriptions().every((d) => d.includes("aborted")), { timeoutMs: 10_000, what: "every caller on the aborted rule" });
    const since = Math.max(...l.changeTimes());
    const n = l.calls.length;
    await waitFor(() => l.calls.length > n + 100, { timeoutMs: 20_000, what: "100 more calls" });
    const after = l.calls.filter((c) => c.at > since);
    expect(new Set(after.map((c) => c.version))).to.deep.equal(new Set(["v1"]));
    // No failed call beyond those the bad canary answered itself.
    expect(l.calls.filter((c) => !c.ok && c.version !== "v2")).to.have.length(0);
    expect(after.filter((c) => !c.ok)).to.have.length(0);
  });

  it("follows the no-data policy: pause waits for a human, fail aborts", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    // No load at all: every interval is empty.
    await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "10,100", "--interval", "1s", "--count", "2", "--min-requests", "5", "--no-data", "pause");
    await controller();
    const paused = await phase("Paused");
    expect(paused.pausedBy).to.equal("analysis");
    expect(paused.message).to.match(/no data \(policy "pause"\)/);
    expect(paused.weight).to.equal(10);
    expect((await release(fixture.endpoints, namespace, "abort", "greeter")).code).to.equal(0);

    await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "10,100", "--interval", "1s", "--count", "2", "--min-requests", "5", "--no-data", "fail");
    const failed = await phase("Degraded");
    expect(failed.message).to.match(/no data \(policy "fail"\)/);
  });

  it("refuses a second release of the same service and commands that do not apply, exiting 1", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    expect((await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--analysis", "none", "--pause", "forever")).code).to.equal(0);
    const again = await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2");
    expect(again.code).to.equal(1);
    expect(again.err).to.contain("already has a release in progress");
    const retry = await release(fixture.endpoints, namespace, "retry", "greeter");
    expect(retry.code).to.equal(1);
    expect(retry.err).to.contain("only an aborted or degraded");
    expect((await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v9", "--stable", "version=v9")).code).to.equal(2);
    expect((await release(fixture.endpoints, namespace, "status", "nobody")).code).to.equal(1);
  });
});
