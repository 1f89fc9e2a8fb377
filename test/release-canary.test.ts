import { expect } from "chai";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { ReleaseController } from "../release/controller/controller";
import { ReleaseStateStore } from "../release/controller/state-store";
import { openTrafficStore } from "../traffic/store";
import type { ReleaseState } from "../release/state";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { release, startFleet, type GreeterFleet } from "./helpers/release-fixture";
import { ReleaseLoad } from "./helpers/release-load";
import { waitFor } from "./helpers/wait";
import { silentLogger } from "./helpers/release-logger";
import { main } from "../cli/main";
import type { CliIo } from "../cli/command";

describe("canary releases (real etcd, two versions, load through etcd:/// clients)", function () {
  this.timeout(120_000);
  const fixture = useEmbeddedEtcd();
  let namespace: string;
  let fleet: GreeterFleet | undefined;
  let load: ReleaseLoad | undefined;
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
    load = ReleaseLoad.start({ endpoints: fixture.endpoints, namespace, versions: fleet!.versions, clients: 3, concurrency: 4 });
    // Every client is calling (no rule yet: both versions answer) before the release begins.
    await load.settled(Date.now(), (c) => c.version !== "?", { streak: 10 });
    return load;
  };
  /** When the rule in force was written (the version record's own time). */
  const ruleWrittenAt = async () => {
    const rules = openTrafficStore({ client: fixture.rawEtcd(), namespace, service: "greeter" });
    const v = await rules.current();
    return { at: Date.parse(v!.at), description: String(v!.value.description ?? "") };
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
    // Once every client holds the promoted rule, only v2 answers it.
    const written = await ruleWrittenAt();
    expect(written.description).to.contain("promoted");
    await l.settled(written.at, (c) => c.version === "v2");
    expect(l.calls.filter((c) => !c.ok)).to.deep.equal([]);
    expect(new Set(l.calls.map((c) => c.client))).to.deep.equal(new Set([0, 1, 2]));
    // Every step is a version in the traffic store's history, written by the controller.
    const steps = (await openTrafficStore({ client: fixture.rawEtcd(), namespace, service: "greeter" }).history()).reverse();
    expect(steps.map((v) => v.comment)).to.deep.equal([`release ${done.id}: weight 20 %`, `release ${done.id}: weight 50 %`, `release ${done.id}: weight 100 %`, `release ${done.id}: succeeded: all steps done`]);
    expect(steps.map((v) => v.version)).to.deep.equal([1, 2, 3, 4]);
    expect(steps.every((v) => v.author.startsWith("protomesh release controller "))).to.equal(true);
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
    const written = await ruleWrittenAt();
    expect(written.description).to.contain("aborted");
    // Every client stops sending calls to v2, each within its own watch of the rule.
    const stopped = await l.settled(written.at, (c) => c.version === "v1");
    // No failed call beyond those the bad canary answered itself.
    expect(l.calls.filter((c) => !c.ok && c.version !== "v2")).to.deep.equal([]);
    expect(l.calls.filter((c) => !c.ok && c.version === "v2").length).to.be.greaterThan(0);
    console.log(`      failing canary aborted by analysis: rule written → 0 % canary at each of 3 clients: ${stopped.map((t) => `${Math.max(0, t - written.at)} ms`).join(", ")}`);
  });

  it("a user's abort sends every client's calls back to stable at once, with no failed call", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    const l = await startLoad();
    expect((await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "50,100", "--pause", "forever", "--analysis", "none")).code).to.equal(0);
    await controller();
    const paused = await phase("Paused");
    expect(paused.weight).to.equal(50);
    // Each client sends canary traffic before the abort.
    const weighted = (await ruleWrittenAt()).at;
    await waitFor(() => [0, 1, 2].every((n) => l.of(n).some((c) => c.startedAt > weighted && c.version === "v2")), { timeoutMs: 30_000, what: "v2 calls from every client" });
    const abortAt = Date.now();
    const aborted = await release(fixture.endpoints, namespace, "abort", "greeter");
    expect(aborted.code, aborted.err).to.equal(0);
    const written = await ruleWrittenAt();
    expect(written.description).to.contain("aborted");
    const stopped = await l.settled(abortAt, (c) => c.version === "v1");
    expect(l.calls.filter((c) => !c.ok)).to.deep.equal([]);
    console.log(`      abort → 0 % canary at each of 3 clients: ${stopped.map((t) => `${Math.max(0, t - abortAt)} ms`).join(", ")} (rule written ${written.at - abortAt} ms after the command began)`);
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

  it("names a usage mistake (exit 2) before asking the registry, and a missing etcd in one line (exit 1)", async () => {
    const cli = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
      let out = "";
      let err = "";
      const io: CliIo = { cwd: process.cwd(), env, out: (t) => void (out += t), err: (t) => void (err += t) };
      return { code: await main(["release", ...args], io), out, err };
    };
    const withEtcd = { ETCD_ENDPOINTS: fixture.endpoints.join(","), PROTOMESH_NAMESPACE: namespace };
    const unknown = await cli(withEtcd, "nosuch", "greeter");
    expect(unknown.code).to.equal(2);
    expect(unknown.err).to.match(/^protomesh release: unknown verb "nosuch"\n/);
    // No instance is registered, so the stable side cannot be inferred: the flags are checked first.
    const steps = await cli(withEtcd, "start", "greeter", "--canary", "version=v2", "--steps", "5,abc");
    expect(steps.code).to.equal(2);
    expect(steps.err).to.match(/^protomesh release: --steps: use weights 0–100/);
    const interval = await cli(withEtcd, "start", "greeter", "--canary", "version=v2", "--interval", "soon");
    expect(interval.code).to.equal(2);
    expect(interval.err).to.match(/^protomesh release: --interval: bad duration "soon"/);
    const noEtcd = await cli({}, "list");
    expect(noEtcd.code).to.equal(1);
    expect(noEtcd.err).to.match(/^protomesh release: no etcd endpoints: .*\n$/);
    expect(noEtcd.err.split("\n").filter(Boolean)).to.have.length(1);
  });
});
