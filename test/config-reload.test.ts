import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { configKeys } from "../config";
import { captureLogger } from "./helpers/capture-logger";
import { useConfigFixture } from "./helpers/config-fixture";
import { percentiles, runConfigCli, startConfigApp, type AppProcess } from "./helpers/config-processes";
import { useEmbeddedEtcd } from "./helpers/etcd";
import { Recorder } from "./helpers/wait";

describe("config: hot reload", function () {
  this.timeout(45_000);
  const etcd = useEmbeddedEtcd();
  const fx = useConfigFixture(etcd);
  const apps: AppProcess[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.stop()));
  });

  it("calls watchers with the next and previous value well within a second of each write", async () => {
    const store = fx.store();
    await store.write({ greeting: "v0" });
    const cfg = await fx.load();
    const heard = new Recorder<{ next: string; prev: string; version: number; at: number }>();
    cfg.watch((next, prev, change) => heard.push({ next: next.greeting, prev: prev.greeting, version: change.version, at: performance.now() }));

    const latencies: number[] = [];
    for (let i = 1; i <= 100; i++) {
      const started = performance.now();
      await store.write({ greeting: `v${i}` });
      const change = await heard.next();
      latencies.push(change.at - started);
      expect(change).to.include({ next: `v${i}`, prev: `v${i - 1}`, version: i + 1 });
    }
    const { median, p99, max } = percentiles(latencies);
    console.log(`      in-process put→callback over 100 writes: median ${median.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
    expect(p99).to.be.below(1000);
    expect(cfg.current.greeting).to.equal("v100");
  });

  it("rejects a value that fails validation with a clear log line and keeps the last good config", async () => {
    const store = fx.store();
    await store.write({ greeting: "good", rateLimit: { burst: 3 } });
    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    const heard = new Recorder<string>();
    cfg.watch((next) => heard.push(next.greeting));

    // A writer that skips validation (etcdctl, a script) stores a bad version.
    const keys = configKeys(fx.namespace, "test", "greeter");
    const bad = { version: 2, type: "examples.greeter.v1.GreeterConfig", value: { greeting: 7, rateLimit: { burst: -1 } }, author: "script", at: new Date().toISOString(), comment: "", kind: "set", base: 1 };
    await etcd.rawEtcd().put(keys.version(2)).value(JSON.stringify(bad));
    await etcd.rawEtcd().put(keys.current).value(JSON.stringify({ version: 2 }));

    const entry = await logger.entries.next((e) => e.level === "error", { what: "rejection log line" });
    expect(entry.msg).to.equal("rejected config version 2: greeting: expected a string, got 7; rateLimit.burst: -1 is out of range (0 to 4294967295)");
    expect(entry.fields).to.include({ version: 2, keepingVersion: 1 });
    expect(cfg.current.greeting).to.equal("good");
    expect(cfg.version).to.equal(1);

    await store.write({ greeting: "fixed" });
    expect(await heard.next()).to.equal("fixed");
    expect(heard.values).to.deep.equal(["fixed"]);
  });

  it("does not call watchers for a new version with the same value, and survives a listener that throws", async () => {
    const store = fx.store();
    await store.write({ greeting: "a" });
    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    const heard = new Recorder<number>();
    cfg.watch(() => {
      throw new Error("listener bug");
    });
    cfg.watch((_next, _prev, change) => heard.push(change.version));
    await store.write({ greeting: "a" }, { comment: "same value" });
    await store.write({ greeting: "b" });
    expect(await heard.next()).to.equal(3);
    expect(heard.values).to.deep.equal([3]);
    expect(cfg.version).to.equal(3);
    expect(logger.matching("config watch listener threw")).to.have.length(1);
  });

  it("reloads end to end across processes: the CLI writes, running apps hear it within a second", async () => {
    const store = fx.store();
    await store.write({ greeting: "start" });
    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace, PROTOMESH_ENV: "test" };
    const a = startConfigApp("greeter", env);
    const b = startConfigApp("greeter", env);
    apps.push(a, b);
    for (const app of [a, b]) expect(await app.events.next(() => true, { timeoutMs: 15_000, what: "app loaded" })).to.include({ event: "loaded", greeting: "start", version: 1 });

    const cli = await runConfigCli(["set", "greeting=from the CLI", "--app", "greeter", "--comment", "cross-process"], env);
    expect(cli.code, cli.stderr).to.equal(0);
    for (const app of [a, b]) expect(await app.events.next()).to.include({ event: "changed", greeting: "from the CLI", version: 2 });

    // Latency across processes: the writer's clock before the write, the app's clock in its callback.
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = Date.now();
      await store.write({ greeting: `x${i}` });
      for (const app of [a, b]) {
        const e = await app.events.next();
        expect(e.greeting).to.equal(`x${i}`);
        latencies.push(e.at - started);
      }
    }
    const { median, p99, max } = percentiles(latencies);
    console.log(`      cross-process put→callback over ${latencies.length} deliveries: median ${median} ms, p99 ${p99} ms, max ${max} ms`);
    expect(max).to.be.below(1000);
  });

  it("CLI watch prints each version as it lands", async () => {
    const store = fx.store();
    await store.write({ greeting: "one" });
    const child = spawn(process.execPath, [path.resolve(__dirname, "..", "bin", "protomesh.js"), "config", "watch", "--app", "greeter", "--json"], {
      env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace, PROTOMESH_ENV: "test" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = new Recorder<{ version: number; value: { greeting: string }; previousVersion: number }>();
    let buffer = "";
    child.stdout.on("data", (c: Buffer) => {
      buffer += c.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
    });
    try {
      expect(await lines.next(() => true, { timeoutMs: 15_000 })).to.deep.include({ version: 1, previousVersion: 0, value: { greeting: "one" } });
      await store.write({ greeting: "two" });
      expect(await lines.next()).to.deep.include({ version: 2, previousVersion: 1, value: { greeting: "two" } });
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      expect(await exited).to.equal(0);
    }
  });
});
