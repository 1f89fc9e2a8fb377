/**
 * Release analysis through a real Prometheus: Debian's prometheus scraping real greeters of two
 * versions, its targets found through `protomesh prometheus-sd` (HTTP service discovery from the
 * etcd registry), load through etcd:/// clients, and releases judged with PromQL.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { ReleaseController } from "../release/controller/controller";
import { ReleaseStateStore } from "../release/controller/state-store";
import { startPrometheusSd, type PrometheusSd } from "../release/prometheus/sd-server";
import type { ReleaseState } from "../release/state";
import { main } from "../cli/main";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { startPrometheus, type PrometheusServer } from "./helpers/prometheus";
import { release, startFleet, type GreeterFleet } from "./helpers/release-fixture";
import { ReleaseLoad } from "./helpers/release-load";
import { silentLogger } from "./helpers/release-logger";
import { waitFor } from "./helpers/wait";

describe("release analysis through a real Prometheus fed by registry service discovery", function () {
  this.timeout(240_000);
  const fixture = useEmbeddedEtcd();
  let namespace: string;
  let fleet: GreeterFleet | undefined;
  let load: ReleaseLoad | undefined;
  let sd: PrometheusSd | undefined;
  let prometheus: PrometheusServer | undefined;
  const controllers: ReleaseController[] = [];
  const clients: Array<{ close(): void }> = [];
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "protomesh-release-prom-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    namespace = uniqueNamespace();
  });
  afterEach(async function () {
    this.timeout(60_000);
    await load?.stop();
    load = undefined;
    await Promise.all(controllers.splice(0).map((c) => c.stop()));
    await prometheus?.stop();
    prometheus = undefined;
    await sd?.close();
    sd = undefined;
    await fleet?.close();
    fleet = undefined;
    for (const c of clients.splice(0)) c.close();
  });

  const etcdClient = (endpoints = fixture.endpoints, callTimeoutMs?: number) => {
    const client = createEtcdClient(resolveEtcdOptions({ endpoints, namespace, callTimeoutMs }));
    clients.push(client);
    return client;
  };
  /** Greeters v1 and v2 (v2 failing `failShare` of its calls), the registry's SD endpoint, and Prometheus scraping what it lists. */
  const world = async (failShare = 0) => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2", failShare }]);
    sd = await startPrometheusSd({ client: etcdClient(), namespace, logger: silentLogger() });
    prometheus = await startPrometheus({ scrapeConfigs: [{ job_name: "protomesh", http_sd_configs: [{ url: `${sd.url}/targets`, refresh_interval: "1s" }] }] });
    load = ReleaseLoad.start({ endpoints: fixture.endpoints, namespace, versions: fleet.versions, clients: 3, concurrency: 4 });
    // Both versions' series in Prometheus, under their registry labels.
    await waitFor(async () => (await prometheus!.query(`sum by (version) (grpc_server_handled_total{service="greeter",grpc_method="SayHello"})`)).filter((s) => s.value > 0).length === 2, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: "SayHello series of v1 and v2 in Prometheus",
    });
    return { fleet, prometheus, load };
  };
  const store = () => new ReleaseStateStore(fixture.rawEtcd(), namespace);
  const controller = async () => {
    const c = new ReleaseController({ client: etcdClient(), namespace, leaseTtlSeconds: 2, tickMs: 200, logger: silentLogger() });
    await c.start();
    controllers.push(c);
  };
  const phase = (want: ReleaseState["phase"], timeoutMs = 90_000) =>
    waitFor(async () => {
      const s = (await store().get("greeter"))?.state;
      return s?.phase === want ? s : undefined;
    }, { timeoutMs, intervalMs: 100, what: `release phase ${want}` });
  /** The default checks with a latency bound a loaded machine cannot trip: these specs are about success rates and data. */
  const analysisFile = () => {
    const file = join(dir, `${namespace}.json`);
    writeFileSync(file, JSON.stringify({ checks: [{ metric: "success-rate", pass: 0.99, fail: 0.95, maxWorseThanStable: 0.02 }, { metric: "latency-p99", pass: 5, fail: 10 }] }));
    return file;
  };

  it("labels every instance's series with its registry version, so PromQL separates v1 from v2 call for call", async () => {
    const { prometheus: prom, load: l } = await world();
    const targets = await prom.targets();
    expect(targets.map((t) => t.labels.version).sort()).to.deep.equal(["v1", "v2"]);
    for (const t of targets) {
      expect(t.labels).to.include({ service: "greeter", namespace, job: "protomesh" });
      expect(t.labels.id).to.match(/^greeter-v[12]-\d$/);
      expect(t.health).to.equal("up", t.lastError);
    }
    await l.stop();
    // Once the last scrape after the load is in, Prometheus's count per version is exactly what each version answered.
    const answered = (v: string) => l.calls.filter((c) => c.version === v).length;
    await waitFor(
      async () => {
        const byVersion = new Map((await prom.query(`sum by (version) (grpc_server_handled_total{service="greeter",grpc_method="SayHello"})`)).map((s) => [s.metric.version, s.value]));
        return byVersion.get("v1") === answered("v1") && byVersion.get("v2") === answered("v2");
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `Prometheus counting ${answered("v1")} v1 and ${answered("v2")} v2 calls` },
    );
    expect(answered("v1")).to.be.greaterThan(0);
    expect(answered("v2")).to.be.greaterThan(0);
  });

  it("serves the same targets to `protomesh prometheus-sd --print`, and 503 (never an empty list) when etcd cannot answer", async () => {
    fleet = await startFleet(fixture.endpoints, namespace, [{ version: "v1" }, { version: "v2" }]);
    let out = "";
    let err = "";
    const io = { cwd: process.cwd(), env: {}, out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
    expect(await main(["prometheus-sd", "--print", "--endpoints", fixture.endpoints.join(","), "--namespace", namespace], io), err).to.equal(0);
    const printed = JSON.parse(out) as Array<{ targets: string[]; labels: Record<string, string> }>;
    expect(printed.map((g) => g.labels.version)).to.deep.equal(["v1", "v2"]);
    expect(printed.map((g) => g.targets[0])).to.deep.equal(fleet.instances.map((i) => `127.0.0.1:${i.metricsPort}`));
    sd = await startPrometheusSd({ client: etcdClient(), namespace, logger: silentLogger() });
    const served = await (await fetch(`${sd.url}/targets?service=greeter`)).json();
    expect(served).to.deep.equal(printed);
    expect(await (await fetch(`${sd.url}/targets?service=other`)).json()).to.deep.equal([]);
    expect((await fetch(`${sd.url}/nothing`)).status).to.equal(404);

    const dead = await startPrometheusSd({ client: etcdClient([`127.0.0.1:${await deadPort()}`], 300), namespace, logger: silentLogger() });
    try {
      const res = await fetch(`${dead.url}/targets`);
      expect(res.status).to.equal(503);
      expect(await res.text()).to.match(/^cannot read the registry/);
    } finally {
      await dead.close();
    }
    const deadEndpoint = `127.0.0.1:${await deadPort()}`;
    err = "";
    expect(await main(["prometheus-sd", "--print", "--endpoints", deadEndpoint, "--namespace", namespace], io)).to.equal(1);
    expect(err).to.match(/^protomesh prometheus-sd: cannot read the registry at http:\/\/127\.0\.0\.1:\d+: /);
    expect(await main(["prometheus-sd", "--listen", "nowhere"], { ...io, err: () => undefined })).to.equal(2);
    // No etcd named at all: one line, exit 1 (not the usage text).
    err = "";
    expect(await main(["prometheus-sd", "--print"], { ...io, env: {} })).to.equal(1);
    expect(err).to.match(/^protomesh prometheus-sd: no etcd endpoints: [^\n]*\n$/);
    out = "";
    expect(await main(["prometheus-sd", "--help"], io)).to.equal(0);
    expect(out).to.contain("http_sd_configs");
  });

  it("promotes a good canary measured by PromQL, with both sides' numbers from Prometheus", async () => {
    const { prometheus: prom, load: l } = await world();
    const started = await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "50,100", "--interval", "3s", "--count", "2", "--min-requests", "5", "--prometheus", prom.url, "--analysis", analysisFile());
    expect(started.code, started.err).to.equal(0);
    await controller();
    const done = await phase("Succeeded");
    const run = done.analysisRuns.at(-1)!;
    expect(run.outcome).to.equal("passed");
    expect(run.measurements.map((m) => m.verdict)).to.deep.equal(["Successful", "Successful"]);
    for (const m of run.measurements) {
      expect(m.canary.requests).to.be.greaterThan(5);
      expect(m.stable.requests).to.be.greaterThan(5);
      expect(m.canary.errors).to.equal(0);
    }
    expect(l.calls.filter((c) => !c.ok)).to.deep.equal([]);
  });

  it("aborts a canary failing 20 % of calls at its first PromQL measurement, and every client returns to stable", async () => {
    const { prometheus: prom, load: l } = await world(0.2);
    const started = await release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--steps", "50,100", "--interval", "3s", "--count", "3", "--min-requests", "5", "--prometheus", prom.url, "--analysis", analysisFile());
    expect(started.code, started.err).to.equal(0);
    await controller();
    const degraded = await phase("Degraded");
    const run = degraded.analysisRuns.at(-1)!;
    expect(run.measurements).to.have.length(1);
    const m = run.measurements[0]!;
    expect(m.verdict).to.equal("Failed");
    // Prometheus's extrapolated increase, not an exact count: about a fifth of the canary's calls failed.
    expect(m.canary.errors / m.canary.requests).to.be.within(0.1, 0.3);
    expect(m.stable.errors).to.equal(0);
    await l.settled(degraded.updatedAt, (c) => c.version === "v1");
    expect(l.calls.filter((c) => !c.ok && c.version !== "v2")).to.deep.equal([]);
  });

  it("follows the no-data policy when Prometheus has no series: pause, fail and skip", async () => {
    // A Prometheus that scrapes nothing: every query comes back empty.
    prometheus = await startPrometheus();
    const start = (policy: string) =>
      release(fixture.endpoints, namespace, "start", "greeter", "--canary", "version=v2", "--stable", "version=v1", "--steps", "10,100", "--interval", "1s", "--count", "2", "--min-requests", "5", "--no-data", policy, "--prometheus", prometheus!.url);
    expect((await start("pause")).code).to.equal(0);
    await controller();
    const paused = await phase("Paused");
    expect(paused.pausedBy).to.equal("analysis");
    expect(paused.message).to.match(/no data \(policy "pause"\): canary served 0 requests/);
    expect(paused.weight).to.equal(10);
    expect((await release(fixture.endpoints, namespace, "abort", "greeter")).code).to.equal(0);

    expect((await start("fail")).code).to.equal(0);
    const failed = await phase("Degraded");
    expect(failed.message).to.match(/no data \(policy "fail"\)/);

    expect((await start("skip")).code).to.equal(0);
    const skipped = await phase("Succeeded");
    expect(skipped.analysisRuns.at(-1)!.measurements.map((x) => x.verdict)).to.deep.equal(["NoData", "NoData"]);
  });
});
