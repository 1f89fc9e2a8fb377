import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { ReleaseController } from "../release/controller/controller";
import { ReleaseStateStore, releaseKeys } from "../release/controller/state-store";
import type { ReleaseState } from "../release/state";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { release, startFleet, type GreeterFleet } from "./helpers/release-fixture";
import { ReleaseLoad } from "./helpers/release-load";
import { silentLogger } from "./helpers/release-logger";
import { waitFor } from "./helpers/wait";

describe("release controller restarts and blue-green switches (real etcd, load through etcd:/// clients)", function () {
  this.timeout(180_000);
  const fixture = useEmbeddedEtcd();
  let namespace: string;
  let fleet: GreeterFleet | undefined;
  let load: ReleaseLoad | undefined;
  const controllers: ReleaseController[] = [];
  const children: ChildProcess[] = [];

  beforeEach(() => {
    namespace = uniqueNamespace();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
    await load?.stop();
    load = undefined;
    await Promise.all(controllers.splice(0).map((c) => c.stop()));
    await fleet?.close();
    fleet = undefined;
  });

  const store = () => new ReleaseStateStore(fixture.rawEtcd(), namespace);
  const state = async () => (await store().get("greeter"))?.state;
  const until = (what: string, check: (s: ReleaseState) => boolean, timeoutMs = 90_000) =>
    waitFor(async () => {
      const s = await state();
      return s && check(s) ? s : undefined;
    }, { timeoutMs, intervalMs: 100, what });
  const startLoad = async (testerShare = 0) => {
    load = ReleaseLoad.start({ endpoints: fixture.endpoints, namespace, versions: fleet!.versions, clients: 3, concurrency: 4, testerShare });
    await load.settled(Date.now(), (c) => c.ok, { streak: 10 });
    return load;
  };

  it("a controller killed mid-release is replaced and the release carries on from its step", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    await startLoad();
    expect((await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "20,40,60,100", "--interval", "2s", "--count", "1", "--min-requests", "5")).code).to.equal(0);
    const child = spawn(process.execPath, [join(__dirname, "..", "bin", "protomesh.js"), "release", "controller", "--lease-ttl", "2", "--endpoints", fixture.endpoints.join(","), "--namespace", namespace], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PROTOMESH_LOG_LEVEL: "warn" },
    });
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => void (stderr += d.toString()));
    const mid = await until("the second weight", (s) => s.weight >= 40).catch((err: Error) => {
      throw new Error(`${err.message}; controller stderr: ${stderr}`);
    });
    const owner = (await fixture.rawEtcd().get(releaseKeys(namespace, "greeter").owner).string()) ?? "";
    expect(owner).to.not.equal("");
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    // A new controller waits for the dead one's lease to expire, then takes over.
    const client = createEtcdClient(resolveEtcdOptions({ endpoints: fixture.endpoints, namespace }));
    const next = new ReleaseController({ client, namespace, leaseTtlSeconds: 2, tickMs: 200, logger: silentLogger() });
    await next.start();
    controllers.push(next);
    const done = await until("success", (s) => s.phase === "Succeeded");
    expect(await fixture.rawEtcd().get(releaseKeys(namespace, "greeter").owner).string()).to.equal(next.id);
    const weights = done.events.map((e) => e.text).filter((t) => t.startsWith("weight"));
    // Each weight set once: the new controller did not start over.
    expect(weights).to.deep.equal(["weight 20 %", "weight 40 %", "weight 60 %", "weight 100 %"]);
    expect(mid.stepIndex).to.be.greaterThan(0);
    expect(load!.calls.filter((c) => !c.ok)).to.have.length(0);
  });

  it("blue-green: testers only on green, then switch and undo under load with 0 failed calls", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v1" }, { version: "v2" }, { version: "v2" }]);
    const l = await startLoad(0.1);
    expect((await release(fixture.endpoints, namespace, "start", "greeter", "--blue-green", "version=v2", "--analysis", "none", "--tester-header", "x-tester=yes")).code).to.equal(0);
    const client = createEtcdClient(resolveEtcdOptions({ endpoints: fixture.endpoints, namespace }));
    const c = new ReleaseController({ client, namespace, leaseTtlSeconds: 2, tickMs: 200, logger: silentLogger() });
    await c.start();
    controllers.push(c);
    await until("waiting for promote", (s) => s.phase === "Paused");
    // Before the switch: users on blue, testers on green.
    let since = Date.now();
    await l.settled(since, (x) => x.version === (x.tester ? "v2" : "v1"), { streak: 60 });

    const switchAt = Date.now();
    expect((await release(fixture.endpoints, namespace, "promote", "greeter")).code).to.equal(0);
    await until("switched", (s) => s.phase === "Succeeded");
    const switched = await l.settled(switchAt, (x) => x.version === "v2");

    const undoAt = Date.now();
    expect((await release(fixture.endpoints, namespace, "undo", "greeter")).code).to.equal(0);
    const undone = await l.settled(undoAt, (x) => x.version === "v1");
    since = Date.now();
    await l.next(100);
    expect(new Set(l.calls.filter((x) => x.startedAt > since).map((x) => x.version))).to.deep.equal(new Set(["v1"]));
    expect(l.calls.filter((x) => !x.ok)).to.deep.equal([]);
    // Figures for docs/release.md (printed, not asserted: the machine is shared).
    const slowest = (ts: number[], from: number) => Math.max(...ts.map((t) => Math.max(0, t - from)));
    console.log(`      blue-green: ${l.calls.length} calls, ${l.calls.filter((x) => !x.ok).length} failed; promote → every client on green ${slowest(switched, switchAt)} ms; undo → every client on blue ${slowest(undone, undoAt)} ms`);
  });
});
