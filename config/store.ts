/**
 * Reading and writing one application's config in one environment: numbered
 * versions with who/when/comment, history, rollback, gray releases. Every
 * write is one etcd Txn that creates the next version key only if it does not
 * exist yet, and, when the write depends on what is current, only if `current`
 * has not moved since it was read: two operators can never both "win".
 *
 * ```ts
 * const store = openStore({ app: "greeter", env: "prod", schema: GreeterConfigDefinition });
 * const v = await store.write({ greeting: "Hello" }, { comment: "friendlier", expectVersion: 6 });
 * await store.rollback(5, { comment: "too friendly" });
 * ```
 */
import { hostname, userInfo } from "node:os";
import { prefixEnd } from "../registry/etcd/watch-stream";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "../registry/etcd/options";
import { getLogger, type Logger } from "../runtime/logger";
import type { Etcd3, ICompare, IRequestOp } from "etcd3";
import { normalizeConfig, type ConfigSchema } from "./definition";
import { ConfigError, ConfigValidationError, ConflictError } from "./errors";
import { classifyKey, configKeys, MAX_VERSION, type ConfigKeys } from "./keys";
import { checkLabels, type Labels, matchesLabels } from "./labels";
import {
  checkAudit,
  decodeRecord,
  encodeCurrent,
  encodeGray,
  encodeRecord,
  type GrayRule,
  type JsonObject,
  type VersionKind,
  type VersionRecord,
} from "./records";
import { readSnapshot, type Snapshot } from "./snapshot";
import { ConfigWatcher } from "./watcher";

export interface StoreOptions extends EtcdOptions {
  app: string;
  /** Default: `PROTOMESH_ENV`. */
  env?: string;
  /** Validates every new value (unknown fields rejected). Needed to write new values; reads work without. */
  schema?: ConfigSchema;
  /** Recorded as the author of writes. Default: `PROTOMESH_USER`, else `user@host`. */
  author?: string;
}

/** Options of one write. */
export interface WriteOptions {
  comment?: string;
  /** Overrides the store's author for this write. */
  author?: string;
  /** Write only if this is still the current version (0: only if there is none yet). */
  expectVersion?: number;
}

/** A problem found under the prefix by {@link ConfigStore.check}. */
export interface StoreProblem {
  readonly key: string;
  readonly reason: string;
}

/** Attempts of a write that lost a race it may retry (a version number taken, or a re-applied patch). */
const MAX_ATTEMPTS = 20;

export function openStore(options: StoreOptions): ConfigStore {
  return new ConfigStore(options);
}

export class ConfigStore {
  readonly app: string;
  readonly env: string;
  readonly namespace: string;
  readonly keys: ConfigKeys;
  readonly schema: ConfigSchema | undefined;
  private readonly client: Etcd3;
  private readonly author: string;
  private readonly logger: Logger;
  private readonly callTimeoutMs: number;

  constructor(options: StoreOptions) {
    const env = options.env ?? process.env.PROTOMESH_ENV;
    if (!env) throw new ConfigError("no environment: pass `env` or set PROTOMESH_ENV (e.g. PROTOMESH_ENV=dev)");
    const logger = options.logger ?? getLogger().child({ component: "config" });
    const resolved = resolveEtcdOptions({ ...options, logger });
    this.app = options.app;
    this.env = env;
    this.namespace = resolved.namespace;
    this.keys = configKeys(resolved.namespace, env, options.app);
    this.schema = options.schema;
    this.author = options.author ?? defaultAuthor();
    this.logger = logger.child({ app: this.app, env: this.env });
    this.callTimeoutMs = resolved.callTimeoutMs;
    this.client = createEtcdClient(resolved);
  }

  /** `app@env`, for messages. */
  get label(): string {
    return `${this.app}@${this.env}`;
  }

  /** The current version, or undefined when nothing was written yet. */
  async current(): Promise<VersionRecord | undefined> {
    const snap = await readSnapshot(this.client, this.keys);
    if (!snap.current) return undefined;
    return this.get(this.pointerVersion(snap.current, "current"));
  }

  /** The active gray release, if any. */
  async gray(): Promise<GrayRule | undefined> {
    const snap = await readSnapshot(this.client, this.keys);
    return snap.gray ? this.readGray(snap) : undefined;
  }

  /** The version an instance with `labels` runs: the gray one when its rule matches, else the current one. */
  async effective(labels: Labels): Promise<VersionRecord | undefined> {
    const snap = await readSnapshot(this.client, this.keys);
    const gray = snap.gray?.ok ? snap.gray.value : undefined;
    if (gray && matchesLabels(gray.match, labels)) return this.get(gray.version);
    return snap.current ? this.get(this.pointerVersion(snap.current, "current")) : undefined;
  }

  /** One version; throws `ConfigError` when it does not exist or cannot be read. */
  async get(version: number): Promise<VersionRecord> {
    const res = await this.client.kv.range({ key: Buffer.from(this.keys.version(version)) });
    const kv = res.kvs[0];
    if (!kv) throw new ConfigError(`${this.label} has no version ${version}`);
    const decoded = decodeRecord(kv.value, version);
    if (!decoded.ok) throw new ConfigError(`${this.label} version ${version} is unreadable: ${decoded.reason}`);
    return decoded.value;
  }

  /** Versions, newest first. Unreadable records are skipped with a warning. */
  async history(options: { limit?: number } = {}): Promise<VersionRecord[]> {
    const res = await this.client.kv.range({
      key: Buffer.from(`${this.keys.versions}0`),
      range_end: Buffer.from(`${this.keys.versions}:`),
      sort_order: "Descend",
      sort_target: "Key",
      limit: options.limit ?? 20,
    });
    const records: VersionRecord[] = [];
    for (const kv of res.kvs) {
      const kind = classifyKey(this.keys, kv.key.toString());
      const decoded = kind.kind === "version" ? decodeRecord(kv.value, kind.version) : { ok: false as const, reason: "not a version key" };
      if (decoded.ok) records.push(decoded.value);
      else this.logger.warn("skipping unreadable config version", { key: kv.key.toString(), reason: decoded.reason });
    }
    return records;
  }

  /** Writes a whole new value (validated against the schema) as the next version, and makes it current. */
  async write(value: unknown, options: WriteOptions & { kind?: "set" | "import" } = {}): Promise<VersionRecord> {
    const json = this.validate(value);
    return this.commit(options, async () => ({ json, kind: options.kind ?? "set" }));
  }

  /**
   * Read-modify-write: `change` gets a copy of the current value (`{}` when
   * none) and returns the new one. When another write lands first, `change`
   * runs again on the newer value, so concurrent patches of different fields
   * all survive; with `expectVersion`, a moved version throws `ConflictError`.
   */
  async update(change: (value: JsonObject) => unknown, options: WriteOptions = {}): Promise<VersionRecord> {
    return this.commit(
      options,
      async (snap) => {
        const base = snap.current ? (await this.get(this.pointerVersion(snap.current, "current"))).value : {};
        return { json: this.validate(change(structuredClone(base))), kind: "set" };
      },
      { guardCurrent: true },
    );
  }

  /** Makes a copy of an earlier version the new current version. */
  async rollback(version: number, options: WriteOptions = {}): Promise<VersionRecord> {
    const target = await this.get(version);
    const json = this.schema ? this.validate(target.value) : target.value;
    return this.commit(options, async () => ({ json, kind: "rollback", from: version, type: target.type }));
  }

  /**
   * Starts a gray release: writes `value` as a new version that only instances
   * whose labels match every pair of `match` run. One gray release at a time.
   */
  async startGray(value: unknown, match: Labels, options: WriteOptions = {}): Promise<VersionRecord> {
    const rule = checkLabels(match);
    if (Object.keys(rule).length === 0) throw new ConfigError("a gray release needs at least one label to match (write to everyone with set or import)");
    const json = this.validate(value);
    return this.commit(
      options,
      async (snap) => {
        if (snap.gray) throw new ConfigError(`${this.label} already has a gray release${snap.gray.ok ? ` of version ${snap.gray.value.version}` : ""}: promote or drop it first`);
        return { json, kind: "gray", match: rule };
      },
      { guardGray: true, keepCurrent: true },
    );
  }

  /** Gives the gray version to everyone: a new current version with its value; the gray rule ends. */
  async promoteGray(options: WriteOptions = {}): Promise<VersionRecord> {
    return this.commit(
      options,
      async (snap) => {
        const gray = this.readGray(snap);
        const source = await this.get(gray.version);
        return { json: source.value, kind: "promote", from: gray.version, type: source.type };
      },
      { guardGray: true, endGray: true },
    );
  }

  /**
   * Ends the gray release without promoting it: matching instances go back to
   * the current version. Returns the rule (undefined if it was unreadable).
   */
  async dropGray(): Promise<GrayRule | undefined> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await readSnapshot(this.client, this.keys);
      if (!snap.gray) throw new ConfigError(`${this.label} has no gray release`);
      const res = await this.client.kv.txn({
        compare: [{ key: Buffer.from(this.keys.gray), target: "Mod", result: "Equal", mod_revision: snap.gray.modRevision }],
        success: [{ request_delete_range: { key: Buffer.from(this.keys.gray) } }],
      });
      if (res.succeeded) return snap.gray.ok ? snap.gray.value : undefined;
    }
    throw new ConfigError(`${this.label}: the gray rule kept changing; try again`);
  }

  /** Lists keys under the prefix that are not part of the layout, and pointers that cannot be read. */
  async check(): Promise<StoreProblem[]> {
    const problems: StoreProblem[] = [];
    const end = prefixEnd(this.keys.prefix);
    let from = Buffer.from(this.keys.prefix);
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: end, keys_only: true, limit: 1000 });
      for (const kv of res.kvs) {
        const key = kv.key.toString();
        if (classifyKey(this.keys, key).kind === "unknown") problems.push({ key, reason: "not part of the config layout" });
      }
      const last = res.kvs.at(-1);
      if (!res.more || !last) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    const snap = await readSnapshot(this.client, this.keys);
    if (snap.current && !snap.current.ok) problems.push({ key: this.keys.current, reason: snap.current.reason });
    if (snap.gray && !snap.gray.ok) problems.push({ key: this.keys.gray, reason: snap.gray.reason });
    return problems;
  }

  /**
   * Follows the version an instance with `labels` would run: `onVersion` hears
   * the one in force now, then each change. With a schema, versions that do
   * not validate are rejected (and logged) as in `load`. Throws if etcd cannot
   * be read at first.
   */
  async follow(labels: Labels, onVersion: (record: VersionRecord, prev: VersionRecord | undefined) => void): Promise<{ stop(): Promise<void> }> {
    const schema = this.schema;
    const watcher = new ConfigWatcher<JsonObject>({
      client: this.client,
      keys: this.keys,
      labels: checkLabels(labels),
      callTimeoutMs: this.callTimeoutMs,
      logger: this.logger,
      decode: (record) => {
        if (!schema) return { ok: true, value: record.value, canonical: JSON.stringify(record.value) };
        const n = normalizeConfig(schema, record.value, { unknownFields: "ignore" });
        return n.ok ? { ok: true, value: n.json, canonical: JSON.stringify(n.json) } : n;
      },
      onApplied: (next, prev) => onVersion(next.record, prev?.record),
    });
    await watcher.sync();
    watcher.start();
    return { stop: () => watcher.stop() };
  }

  /** The store's etcd connection, for writes that go with a config change (the console's audit log). */
  get etcd(): Etcd3 {
    return this.client;
  }

  close(): void {
    this.client.close();
  }

  private validate(value: unknown): JsonObject {
    if (!this.schema) throw new ConfigError("writing a new value needs the config's schema (open the store with `schema`)");
    const result = normalizeConfig(this.schema, value);
    if (!result.ok) throw new ConfigValidationError(result.issues, `${this.label} config`);
    return result.json;
  }

  private pointerVersion(read: NonNullable<Snapshot["current"]>, what: string): number {
    if (!read.ok) throw new ConfigError(`${this.label}: the ${what} pointer is unreadable (${read.reason}); write or roll back to repair it`);
    return read.value;
  }

  private readGray(snap: Snapshot): GrayRule {
    if (!snap.gray) throw new ConfigError(`${this.label} has no gray release`);
    if (!snap.gray.ok) throw new ConfigError(`${this.label}: the gray rule is unreadable (${snap.gray.reason}); drop it`);
    return snap.gray.value;
  }

  /**
   * The write loop. Each attempt reads a snapshot, lets `plan` decide the new
   * version's value, and commits one Txn guarded by: the version key is new;
   * `current` is unchanged (when the write depends on it); `gray` is unchanged
   * (for gray operations). A lost guard means someone else wrote: re-read, and
   * either throw `ConflictError` (the expected version moved) or try again.
   */
  private async commit(
    options: WriteOptions,
    plan: (snap: Snapshot) => Promise<{ json: JsonObject; kind: VersionKind; from?: number; match?: Labels; type?: string }>,
    how: { guardCurrent?: boolean; guardGray?: boolean; keepCurrent?: boolean; endGray?: boolean } = {},
  ): Promise<VersionRecord> {
    const author = options.author ?? this.author;
    const comment = options.comment ?? "";
    checkAudit(author, comment);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await readSnapshot(this.client, this.keys);
      const currentVersion = snap.current?.ok ? snap.current.value : 0;
      if (options.expectVersion !== undefined && currentVersion !== options.expectVersion) {
        throw new ConflictError(options.expectVersion, currentVersion, `${this.label} current version`);
      }
      const planned = await plan(snap);
      const version = snap.latest + 1;
      if (version > MAX_VERSION) throw new ConfigError(`${this.label} has run out of version numbers`);
      const record: VersionRecord = {
        version,
        type: this.schema?.typeName ?? planned.type ?? "",
        value: planned.json,
        author,
        at: new Date().toISOString(),
        comment,
        kind: planned.kind,
        ...(planned.from !== undefined ? { from: planned.from } : {}),
        base: currentVersion,
        ...(planned.match ? { match: planned.match } : {}),
      };
      const versionKey = Buffer.from(this.keys.version(version));
      const compare: ICompare[] = [{ key: versionKey, target: "Create", result: "Equal", create_revision: 0 }];
      if (how.guardCurrent || options.expectVersion !== undefined) {
        compare.push({ key: Buffer.from(this.keys.current), target: "Mod", result: "Equal", mod_revision: snap.current?.modRevision ?? 0 });
      }
      if (how.guardGray) {
        compare.push({ key: Buffer.from(this.keys.gray), target: "Mod", result: "Equal", mod_revision: snap.gray?.modRevision ?? 0 });
      }
      const success: IRequestOp[] = [{ request_put: { key: versionKey, value: Buffer.from(encodeRecord(record)) } }];
      if (planned.kind === "gray") {
        const rule: GrayRule = { version, match: planned.match ?? {}, author, at: record.at, comment };
        success.push({ request_put: { key: Buffer.from(this.keys.gray), value: Buffer.from(encodeGray(rule)) } });
      }
      if (!how.keepCurrent) success.push({ request_put: { key: Buffer.from(this.keys.current), value: Buffer.from(encodeCurrent(version)) } });
      if (how.endGray) success.push({ request_delete_range: { key: Buffer.from(this.keys.gray) } });
      const res = await this.client.kv.txn({ compare, success });
      if (res.succeeded) {
        this.logger.info("config version written", { version, kind: record.kind, author, base: currentVersion });
        return record;
      }
    }
    throw new ConfigError(`${this.label}: too many concurrent writers; try again`);
  }
}

function defaultAuthor(): string {
  const fromEnv = process.env.PROTOMESH_USER;
  if (fromEnv) return fromEnv;
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return `${user}@${hostname()}`;
}
