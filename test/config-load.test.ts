import { expect } from "chai";
import { ConfigError, ConfigValidationError, configKeys, MAX_VALUE_BYTES } from "../config";
import type { GreeterConfig } from "../gen/examples/greeter/v1/greeter_config";
import { LogLevel } from "../gen/examples/greeter/v1/greeter_config";
import { captureLogger } from "./helpers/capture-logger";
import { useConfigFixture } from "./helpers/config-fixture";
import { useEmbeddedEtcd } from "./helpers/etcd";
import { Recorder, waitFor } from "./helpers/wait";

/** A version record as the store writes it, for specs that put raw values. */
function rawRecord(version: number, value: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ version, type: "examples.greeter.v1.GreeterConfig", value, author: "spec", at: new Date().toISOString(), comment: "", kind: "set", base: 0, ...extra });
}

describe("config: typed load", function () {
  this.timeout(20_000);
  const etcd = useEmbeddedEtcd();
  const fx = useConfigFixture(etcd);

  it("loads the stored config as a typed, frozen value", async () => {
    await fx.store().write(
      {
        greeting: "Hello",
        maxNameLength: 12,
        streamInterval: "0.25s",
        rateLimit: { requestsPerSecond: 50, burst: 5 },
        translations: { fr: "Bonjour" },
        blockedNames: ["mallory"],
        logLevel: "LOG_LEVEL_WARN",
        features: { shout: true },
      },
      { comment: "first" },
    );
    const cfg = await fx.load();
    const c: GreeterConfig = cfg.current;
    expect(c.greeting).to.equal("Hello");
    expect(c.maxNameLength).to.equal(12);
    expect(c.streamInterval).to.deep.equal({ seconds: 0, nanos: 250_000_000 });
    expect(c.rateLimit).to.deep.equal({ requestsPerSecond: 50, burst: 5 });
    expect(c.translations).to.deep.equal({ fr: "Bonjour" });
    expect(c.blockedNames).to.deep.equal(["mallory"]);
    expect(c.logLevel).to.equal(LogLevel.LOG_LEVEL_WARN);
    expect(c.features).to.deep.equal({ shout: true });
    expect(cfg.version).to.equal(1);
    expect(cfg.source).to.equal("etcd");
    expect(cfg.record).to.include({ comment: "first", kind: "set" });
    expect(() => {
      (c.rateLimit as { burst: number }).burst = 99;
    }).to.throw(TypeError);
  });

  it("takes the environment from PROTOMESH_ENV when none is given, and keeps environments apart", async () => {
    await fx.store({ env: "prod" }).write({ greeting: "prod hello" });
    await fx.store({ env: "dev" }).write({ greeting: "dev hello" });
    const saved = process.env.PROTOMESH_ENV;
    process.env.PROTOMESH_ENV = "prod";
    try {
      const prod = await fx.load({ env: undefined });
      expect(prod.current.greeting).to.equal("prod hello");
    } finally {
      if (saved === undefined) delete process.env.PROTOMESH_ENV;
      else process.env.PROTOMESH_ENV = saved;
    }
    expect((await fx.load({ env: "dev" })).current.greeting).to.equal("dev hello");
    await fx.store({ env: "dev", app: "other" }).write({ greeting: "other app" });
    expect((await fx.load({ env: "dev" })).current.greeting).to.equal("dev hello");
  });

  it("fails clearly when nothing is stored, and serves defaults until the first version when given them", async () => {
    let error: unknown;
    await fx.load().catch((err) => (error = err));
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.match(/no config stored for greeter@test/);

    const cfg = await fx.load({ defaults: { greeting: "default hello", rateLimit: { burst: 1 } } });
    expect(cfg.source).to.equal("defaults");
    expect(cfg.version).to.equal(0);
    expect(cfg.current.greeting).to.equal("default hello");
    const changes = new Recorder<{ next: string; prev: string }>();
    cfg.watch((next, prev) => changes.push({ next: next.greeting, prev: prev.greeting }));
    await fx.store().write({ greeting: "stored hello" });
    expect(await changes.next()).to.deep.equal({ next: "stored hello", prev: "default hello" });
    expect(cfg.source).to.equal("etcd");
  });

  it("refuses to start on a stored value that does not match the schema, naming every bad field", async () => {
    const keys = configKeys(fx.namespace, "test", "greeter");
    const raw = etcd.rawEtcd();
    await raw.put(keys.version(1)).value(rawRecord(1, { greeting: 7, rateLimit: { burst: "lots" } }));
    await raw.put(keys.current).value(JSON.stringify({ version: 1 }));
    let error: unknown;
    await fx.load().catch((err) => (error = err));
    expect(error).to.be.instanceOf(ConfigValidationError);
    expect((error as ConfigValidationError).issues.map((i) => i.path)).to.deep.equal(["greeting", "rateLimit.burst"]);
  });

  it("refuses to start on an unreadable current pointer, saying how to repair it", async () => {
    const keys = configKeys(fx.namespace, "test", "greeter");
    await etcd.rawEtcd().put(keys.current).value("7");
    let error: unknown;
    await fx.load({ defaults: { greeting: "not used" } }).catch((err) => (error = err));
    expect((error as Error).message).to.equal("greeter@test: the current pointer is unreadable (value is not a JSON object); write a new version or roll back to repair it");
    await fx.store().write({ greeting: "repaired" });
    expect((await fx.load()).current.greeting).to.equal("repaired");
  });

  it("ignores fields a newer schema wrote (with a warning), or rejects them when asked to", async () => {
    const keys = configKeys(fx.namespace, "test", "greeter");
    const raw = etcd.rawEtcd();
    await raw.put(keys.version(1)).value(rawRecord(1, { greeting: "hi", addedLater: 3 }));
    await raw.put(keys.current).value(JSON.stringify({ version: 1 }));
    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    expect(cfg.current.greeting).to.equal("hi");
    expect(logger.matching("fields this build does not know")[0].fields).to.include({ version: 1 });
    let error: unknown;
    await fx.load({ unknownFields: "reject" }).catch((err) => (error = err));
    expect((error as ConfigValidationError).issues[0].path).to.equal("addedLater");
  });

  it("reports garbage under the prefix and never loads it", async () => {
    const store = fx.store();
    await store.write({ greeting: "good" });
    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    const changes = new Recorder<string>();
    cfg.watch((next) => changes.push(next.greeting));
    const keys = configKeys(fx.namespace, "test", "greeter");
    const raw = etcd.rawEtcd();
    await raw.put(`${keys.prefix}junk`).value("whatever");
    await raw.put(keys.version(2)).value("{not json");
    await raw.put(keys.current).value(JSON.stringify({ version: 2 }));
    await raw.put(keys.current).value("garbage pointer");
    await waitFor(() => logger.matching("ignoring invalid entry").length >= 3, { what: "garbage warnings" });
    const reasons = logger.matching("ignoring invalid entry").map((e) => `${e.fields.key as string}: ${e.fields.reason as string}`);
    expect(reasons).to.include(`${keys.prefix}junk: not part of the config layout`);
    expect(reasons).to.include(`${keys.version(2)}: value is not JSON`);
    expect(reasons).to.include(`${keys.current}: value is not JSON`);
    expect(cfg.current.greeting).to.equal("good");
    expect(cfg.version).to.equal(1);
    expect(changes.values).to.deep.equal([]);
    expect((await store.check()).map((p) => p.key)).to.have.members([`${keys.prefix}junk`, keys.current]);
  });

  it("bounds value sizes: oversize writes are refused and oversize stored values rejected", async () => {
    const store = fx.store();
    await store.write({ greeting: "small" });
    const huge = "x".repeat(MAX_VALUE_BYTES + 1);
    let error: unknown;
    await store.write({ greeting: huge }).catch((err) => (error = err));
    expect((error as Error).message).to.match(/over the \d+-byte limit/);

    const logger = captureLogger();
    const cfg = await fx.load({ logger });
    const keys = configKeys(fx.namespace, "test", "greeter");
    const raw = etcd.rawEtcd();
    await raw.put(keys.version(2)).value(rawRecord(2, { greeting: huge }));
    await raw.put(keys.current).value(JSON.stringify({ version: 2 }));
    await waitFor(() => logger.matching("ignoring invalid entry").length > 0, { what: "oversize warning" });
    expect(logger.matching("ignoring invalid entry")[0].fields.reason).to.match(/over the \d+-byte limit/);
    expect(cfg.current.greeting).to.equal("small");
  });
});
