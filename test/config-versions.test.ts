import { expect } from "chai";
import { ConfigError, ConflictError, type VersionRecord } from "../config";
import { useConfigFixture } from "./helpers/config-fixture";
import { runConfigCli } from "./helpers/config-processes";
import { useEmbeddedEtcd } from "./helpers/etcd";
import { Recorder, waitFor } from "./helpers/wait";

describe("config: versions, conditional writes, gray release", function () {
  this.timeout(30_000);
  const etcd = useEmbeddedEtcd();
  const fx = useConfigFixture(etcd);

  it("numbers every write and keeps who, when and why in the history", async () => {
    const store = fx.store();
    const before = Date.now();
    await store.write({ greeting: "one" }, { author: "ana", comment: "first cut" });
    await store.write({ greeting: "two" }, { author: "bo", comment: "friendlier" });
    await store.update((v) => ({ ...v, maxNameLength: 10 }), { author: "cy" });
    const history = await store.history();
    expect(history.map((r) => [r.version, r.author, r.comment, r.kind, r.base])).to.deep.equal([
      [3, "cy", "", "set", 2],
      [2, "bo", "friendlier", "set", 1],
      [1, "ana", "first cut", "set", 0],
    ]);
    for (const r of history) expect(Date.parse(r.at)).to.be.within(before - 1000, Date.now() + 1000);
    expect(history[0].value).to.deep.equal({ greeting: "two", maxNameLength: 10 });
    expect(history[0].type).to.equal("examples.greeter.v1.GreeterConfig");
    expect((await store.history({ limit: 1 })).map((r) => r.version)).to.deep.equal([3]);
  });

  it("rolls back by writing an earlier value as a new version, which running instances pick up", async () => {
    const store = fx.store();
    await store.write({ greeting: "good" });
    await store.write({ greeting: "bad idea" });
    const cfg = await fx.load();
    const heard = new Recorder<string>();
    cfg.watch((next) => heard.push(next.greeting));
    const record = await store.rollback(1, { comment: "undo" });
    expect(record).to.include({ version: 3, kind: "rollback", from: 1, base: 2, comment: "undo" });
    expect(record.value).to.deep.equal({ greeting: "good" });
    expect(await heard.next()).to.equal("good");
    expect(cfg.version).to.equal(3);
    expect((await store.history()).map((r) => r.version)).to.deep.equal([3, 2, 1]);
    let error: unknown;
    await store.rollback(42).catch((err) => (error = err));
    expect(error).to.be.instanceOf(ConfigError);
  });

  it("lets exactly one of several racing conditional writers win; the others get ConflictError", async () => {
    await fx.store().write({ greeting: "base" });
    const writers = Array.from({ length: 8 }, () => fx.store());
    const results = await Promise.allSettled(writers.map((s, i) => s.write({ greeting: `writer ${i}` }, { expectVersion: 1 })));
    const won = results.filter((r): r is PromiseFulfilledResult<VersionRecord> => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).to.have.length(1);
    expect(lost).to.have.length(7);
    for (const l of lost) {
      expect(l.reason).to.be.instanceOf(ConflictError);
      expect(l.reason).to.include({ expected: 1, actual: 2 });
    }
    const current = await fx.store().current();
    expect(current?.version).to.equal(2);
    expect(current?.value).to.deep.equal(won[0].value.value);
  });

  it("never loses an update when operators patch different fields at the same time", async () => {
    await fx.store().write({ greeting: "base" });
    const patches: [string, unknown][] = [
      ["maxNameLength", 7],
      ["greeting", "patched"],
      ["translations", { fr: "Bonjour" }],
      ["blockedNames", ["eve"]],
      ["features", { beta: true }],
      ["logLevel", "LOG_LEVEL_DEBUG"],
    ];
    const records = await Promise.all(patches.map(([field, value]) => fx.store().update((v) => ({ ...v, [field]: value }), { comment: field })));
    expect(new Set(records.map((r) => r.version)).size).to.equal(patches.length);
    const current = await fx.store().current();
    expect(current?.version).to.equal(patches.length + 1);
    expect(current?.value).to.deep.equal({
      greeting: "patched",
      maxNameLength: 7,
      translations: { fr: "Bonjour" },
      blockedNames: ["eve"],
      logLevel: "LOG_LEVEL_DEBUG",
      features: { beta: true },
    });
  });

  it("gives a gray version only to instances whose labels match, then promotes it to all", async () => {
    const store = fx.store();
    await store.write({ greeting: "stable" });
    const canary = await fx.load({ labels: { zone: "b", canary: "true" } });
    const sameZone = await fx.load({ labels: { zone: "b" } });
    const other = await fx.load({ labels: { zone: "a", canary: "true" } });
    type Heard = { greeting: string; version: number; from: number };
    const heard = { canary: new Recorder<Heard>(), sameZone: new Recorder<Heard>(), other: new Recorder<Heard>() };
    canary.watch((n, _p, c) => heard.canary.push({ greeting: n.greeting, version: c.version, from: c.previousVersion }));
    sameZone.watch((n, _p, c) => heard.sameZone.push({ greeting: n.greeting, version: c.version, from: c.previousVersion }));
    other.watch((n, _p, c) => heard.other.push({ greeting: n.greeting, version: c.version, from: c.previousVersion }));

    const gray = await store.startGray({ greeting: "trying" }, { zone: "b", canary: "true" }, { comment: "try in b" });
    expect(gray).to.deep.include({ version: 2, kind: "gray", match: { zone: "b", canary: "true" } });
    expect(await heard.canary.next()).to.deep.equal({ greeting: "trying", version: 2, from: 1 });
    expect((await store.current())?.version).to.equal(1);
    expect((await store.effective({ zone: "b", canary: "true", extra: "x" }))?.version).to.equal(2);
    let error: unknown;
    await store.startGray({ greeting: "another" }, { zone: "a" }).catch((err) => (error = err));
    expect((error as Error).message).to.match(/already has a gray release of version 2/);

    const promoted = await store.promoteGray({ comment: "looks good" });
    expect(promoted).to.include({ version: 3, kind: "promote", from: 2, base: 1 });
    // The others go straight from 1 to 3: they never ran the gray version.
    expect(await heard.sameZone.next()).to.deep.equal({ greeting: "trying", version: 3, from: 1 });
    expect(await heard.other.next()).to.deep.equal({ greeting: "trying", version: 3, from: 1 });
    await waitFor(() => canary.version === 3, { what: "canary on the promoted version" });
    expect(heard.canary.values).to.have.length(1); // same value: no second call
    expect(await store.gray()).to.equal(undefined);
  });

  it("drops a gray release: matching instances return to the current version", async () => {
    const store = fx.store();
    await store.write({ greeting: "stable" });
    const canary = await fx.load({ labels: { zone: "b" } });
    const heard = new Recorder<string>();
    canary.watch((n) => heard.push(n.greeting));
    await store.startGray({ greeting: "risky" }, { zone: "b" });
    expect(await heard.next()).to.equal("risky");
    const rule = await store.dropGray();
    expect(rule).to.deep.include({ version: 2, match: { zone: "b" } });
    expect(await heard.next()).to.equal("stable");
    expect(canary.version).to.equal(1);
    expect((await store.history()).map((r) => r.kind)).to.deep.equal(["gray", "set"]);
  });

  it("starts an instance on the gray version when its labels match at load time", async () => {
    const store = fx.store();
    await store.write({ greeting: "stable" });
    await store.startGray({ greeting: "gray" }, { ring: "canary" });
    const saved = process.env.PROTOMESH_LABELS;
    process.env.PROTOMESH_LABELS = "ring=canary";
    try {
      expect((await fx.load()).current.greeting).to.equal("gray");
    } finally {
      if (saved === undefined) delete process.env.PROTOMESH_LABELS;
      else process.env.PROTOMESH_LABELS = saved;
    }
    expect((await fx.load()).current.greeting).to.equal("stable");
  });

  it("runs a gray release from the CLI: start, status, promote", async () => {
    await fx.store().write({ greeting: "stable" });
    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace, PROTOMESH_USER: "ops" };
    const cli = (...args: string[]) => runConfigCli([...args, "--app", "greeter", "--env", "test"], env);
    const start = await cli("gray", "start", "greeting=canary", "--match", "zone=b", "--comment", "try in b");
    expect(start.code, start.stderr).to.equal(0);
    expect(start.stdout).to.match(/gray release of version 2 \(gray for zone=b by ops, .*\): try in b/);
    const status = await cli("gray", "status");
    expect(status.stdout).to.include("version 2 for instances with zone=b (current: 1)");
    expect(status.stdout).to.include('~ greeting: "stable" → "canary"');
    const promote = await cli("gray", "promote", "--comment", "ship it");
    expect(promote.code, promote.stderr).to.equal(0);
    expect(promote.stdout).to.match(/wrote version 3 \(promote of 2 by ops, .*\): ship it, was 1/);
    expect(await fx.store().gray()).to.equal(undefined);
    expect((await fx.store().current())?.value).to.deep.equal({ greeting: "canary" });
  });
});
