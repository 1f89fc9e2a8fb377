import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { ConfigError } from "../config";
import { captureLogger } from "./helpers/capture-logger";
import { useConfigFixture } from "./helpers/config-fixture";
import { deadPort, useEmbeddedEtcd } from "./helpers/etcd";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp-proxy";
import { Recorder } from "./helpers/wait";

describe("config: etcd outages", function () {
  this.timeout(40_000);
  const etcd = useEmbeddedEtcd();
  const fx = useConfigFixture(etcd);
  let proxy: TcpProxy | undefined;
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-config-spec-"));
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("keeps serving the last good config while etcd is stopped, and hears changes after it restarts", async () => {
    await fx.store().write({ greeting: "before" });
    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    const heard = new Recorder<string>();
    cfg.watch((next) => heard.push(next.greeting));

    const member = etcd.etcd.members[0];
    await member.kill("SIGKILL");
    await logger.entries.next((e) => e.msg === "lost contact with etcd; keeping the config in force", { what: "outage warning" });
    expect(cfg.current.greeting).to.equal("before");
    expect(cfg.version).to.equal(1);

    await member.start();
    await fx.store().write({ greeting: "after" });
    expect(await heard.next(() => true, { timeoutMs: 10_000 })).to.equal("after");
    expect(logger.matching("etcd reachable again; config watch resumed")).to.have.length.greaterThan(0);
  });

  it("resumes from the last seen revision: changes made while it was cut off arrive when it reconnects", async () => {
    proxy = await startTcpProxy(etcd.endpoints[0]);
    const store = fx.store();
    await store.write({ greeting: "v1" });
    const logger = captureLogger();
    const cfg = await fx.load({ endpoints: [proxy.endpoint], logger, labels: { zone: "b" } });
    const heard = new Recorder<{ greeting: string; version: number }>();
    cfg.watch((next, _prev, change) => heard.push({ greeting: next.greeting, version: change.version }));

    proxy.cut();
    await logger.entries.next((e) => e.msg.startsWith("lost contact with etcd"), { what: "outage warning" });
    await store.write({ greeting: "v2" });
    await store.startGray({ greeting: "v3 for zone b" }, { zone: "b" });
    proxy.restore();

    expect(await heard.next(() => true, { timeoutMs: 10_000 })).to.deep.equal({ greeting: "v3 for zone b", version: 3 });
    expect(logger.matching("etcd reachable again; config watch resumed")).to.have.length(1);
    expect(logger.matching("compaction")).to.have.length(0);
  });

  it("re-reads the pointers when the changes it missed were compacted away", async () => {
    proxy = await startTcpProxy(etcd.endpoints[0]);
    const store = fx.store();
    await store.write({ greeting: "v1" });
    const logger = captureLogger();
    const cfg = await fx.load({ endpoints: [proxy.endpoint], logger });
    const heard = new Recorder<string>();
    cfg.watch((next) => heard.push(next.greeting));

    proxy.cut();
    await logger.entries.next((e) => e.msg.startsWith("lost contact with etcd"), { what: "outage warning" });
    await store.write({ greeting: "v2" });
    const last = await store.write({ greeting: "v3" });
    const raw = etcd.rawEtcd();
    const { header } = await raw.kv.range({ key: Buffer.from("/") });
    await raw.kv.compact({ revision: header.revision, physical: true });
    proxy.restore();

    expect(await heard.next(() => true, { timeoutMs: 10_000 })).to.equal("v3");
    expect(cfg.version).to.equal(last.version);
    expect(logger.matching("config watch fell behind etcd compaction; re-reading")).to.have.length(1);
  });

  it("starts from the cache file while etcd is unreachable, then catches up when it answers", async () => {
    const cacheFile = path.join(tmp, "greeter.json");
    const store = fx.store();
    await store.write({ greeting: "cached" }, { comment: "to be cached" });
    const first = await fx.load({ cacheFile });
    expect(JSON.parse(fs.readFileSync(cacheFile, "utf8")).record.version).to.equal(1);
    await first.close();

    proxy = await startTcpProxy(etcd.endpoints[0]);
    proxy.cut();
    const logger = captureLogger();
    const cfg = await fx.load({ endpoints: [proxy.endpoint], cacheFile, waitMs: 600, callTimeoutMs: 300, logger });
    expect(cfg.source).to.equal("cache");
    expect(cfg.current.greeting).to.equal("cached");
    expect(cfg.record.comment).to.equal("to be cached");
    expect(logger.matching("serving config version 1 from the cache file")).to.have.length(1);

    const heard = new Recorder<string>();
    cfg.watch((next) => heard.push(next.greeting));
    await store.write({ greeting: "fresh" });
    proxy.restore();
    expect(await heard.next(() => true, { timeoutMs: 10_000 })).to.equal("fresh");
    expect(cfg.source).to.equal("etcd");
    expect(JSON.parse(fs.readFileSync(cacheFile, "utf8")).record.value).to.deep.equal({ greeting: "fresh" });
  });

  it("fails to start, saying why, when etcd is unreachable and there is no cache", async () => {
    const port = await deadPort();
    let error: unknown;
    const started = Date.now();
    await fx.load({ endpoints: [`127.0.0.1:${port}`], waitMs: 500, callTimeoutMs: 300 }).catch((err) => (error = err));
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.match(/cannot read the config of greeter@test from etcd at http:\/\/127\.0\.0\.1:\d+ within 500 ms .* no usable cache file/);
    expect(Date.now() - started).to.be.below(3000);
  });
});
