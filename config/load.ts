/**
 * `load`: an application's typed, hot-reloaded config.
 *
 * ```ts
 * const cfg = await config.load(GreeterConfigDefinition, { app: "greeter", env: "prod" });
 * cfg.current.greeting;                                   // typed, frozen
 * cfg.watch((next, prev) => limiter.resize(next.rateLimit));
 * ```
 */
import { sleep, Backoff } from "../registry/etcd/backoff";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "../registry/etcd/options";
import type { DeepPartial } from "../runtime/definition";
import { getLogger, type Logger } from "../runtime/logger";
import { readCacheFile, writeCacheFile, type CacheIdentity } from "./cache-file";
import { decodeConfig, encodeConfig, normalizeConfig, type ConfigDefinition } from "./definition";
import { ConfigError, ConfigValidationError } from "./errors";
import { configKeys } from "./keys";
import { checkLabels, parseLabels, type Labels } from "./labels";
import type { VersionKind, VersionRecord } from "./records";
import type { ConfigIssue } from "./validate";
import { ConfigWatcher, type Applied, type VersionDecoder } from "./watcher";

export interface LoadOptions<T> extends EtcdOptions {
  /** The application name: one config per app and environment. */
  app: string;
  /** Default: `PROTOMESH_ENV`. */
  env?: string;
  /** This instance's labels, matched by gray releases. Merged over `PROTOMESH_LABELS` (`zone=b,canary=true`). */
  labels?: Labels;
  /**
   * A file holding the last good config. Written on every change; read when
   * etcd cannot be reached at start (or the stored version is invalid).
   */
  cacheFile?: string;
  /** Used when nothing is stored yet (instead of failing); replaced by the first stored version. */
  defaults?: DeepPartial<T>;
  /** How long `load` keeps trying etcd before it falls back to the cache file. Default 5000 ms. */
  waitMs?: number;
  /**
   * Fields in a stored value that this build's schema does not know: `"ignore"`
   * (default; logged once per version, as when a newer schema wrote them) or
   * `"reject"` (the version is refused like any invalid value).
   */
  unknownFields?: "ignore" | "reject";
}

/** What a change was, beside the values. */
export interface ConfigChange {
  readonly version: number;
  readonly previousVersion: number;
  readonly kind: VersionKind;
  readonly author: string;
  readonly at: string;
  readonly comment: string;
}

/** Where the config in force came from. */
export type ConfigSource = "etcd" | "cache" | "defaults";

/** A config that stays current. */
export interface LiveConfig<T> {
  /** The config in force (frozen). Always the last good one. */
  readonly current: T;
  /** Its version number (0 for `defaults`). */
  readonly version: number;
  /** Its version record: who wrote it, when, why. */
  readonly record: VersionRecord;
  readonly source: ConfigSource;
  /**
   * Calls `listener` after each change of value (not for a new version with an
   * identical value). Returns a function that stops it.
   */
  watch(listener: (next: T, prev: T, change: ConfigChange) => void): () => void;
  /** Stops watching and closes the etcd connection. */
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 5000;

/**
 * Loads the config of `app` in `env`, typed by `definition`, and keeps it current.
 * (`T` comes from the definition alone; `defaults` must not widen it.)
 */
export async function load<T>(definition: ConfigDefinition<T>, options: NoInfer<LoadOptions<T>>): Promise<LiveConfig<T>> {
  const env = options.env ?? process.env.PROTOMESH_ENV;
  if (!env) throw new ConfigError("no environment: pass `env` or set PROTOMESH_ENV (e.g. PROTOMESH_ENV=dev)");
  const labels = { ...parseLabels(process.env.PROTOMESH_LABELS ?? ""), ...checkLabels(options.labels ?? {}) };
  const baseLogger = options.logger ?? getLogger().child({ component: "config" });
  const resolved = resolveEtcdOptions({ ...options, logger: baseLogger });
  const keys = configKeys(resolved.namespace, env, options.app);
  const logger = baseLogger.child({ app: options.app, env });
  const client = createEtcdClient(resolved);
  const live = new Live<T>(definition, { namespace: resolved.namespace, env, app: options.app, type: definition.typeName }, options, logger);
  const watcher = new ConfigWatcher<T>({
    client,
    keys,
    labels,
    decode: live.decoder,
    callTimeoutMs: resolved.callTimeoutMs,
    logger,
    onApplied: (next, prev) => live.applied(next, prev),
  });
  live.attach(watcher, () => client.close());
  try {
    await live.start(options.waitMs ?? DEFAULT_WAIT_MS, resolved.endpoints);
  } catch (err) {
    await live.close();
    throw err;
  }
  return live;
}

class Live<T> implements LiveConfig<T> {
  private readonly listeners = new Set<(next: T, prev: T, change: ConfigChange) => void>();
  private readonly warnedUnknown = new Set<number>();
  private watcher!: ConfigWatcher<T>;
  private closeClient!: () => void;
  private closed = false;
  source: ConfigSource = "etcd";

  constructor(
    private readonly definition: ConfigDefinition<T>,
    private readonly identity: CacheIdentity,
    private readonly options: LoadOptions<T>,
    private readonly logger: Logger,
  ) {}

  attach(watcher: ConfigWatcher<T>, closeClient: () => void): void {
    this.watcher = watcher;
    this.closeClient = closeClient;
  }

  get current(): T {
    return this.inForce().value;
  }

  get version(): number {
    return this.inForce().record.version;
  }

  get record(): VersionRecord {
    return this.inForce().record;
  }

  watch(listener: (next: T, prev: T, change: ConfigChange) => void): () => void {
    const slot = (next: T, prev: T, change: ConfigChange) => listener(next, prev, change);
    this.listeners.add(slot);
    return () => void this.listeners.delete(slot);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.watcher.stop();
    this.closeClient();
  }

  readonly decoder: VersionDecoder<T> = (record) => {
    if (record.type !== "" && record.type !== this.definition.typeName) {
      this.logger.warn("config version was written with a different schema; checking it against this one", {
        version: record.version,
        writtenAs: record.type,
        loadedAs: this.definition.typeName,
      });
    }
    const unknownFields = this.options.unknownFields ?? "ignore";
    const normalized = normalizeConfig(this.definition, record.value, { unknownFields });
    if (!normalized.ok) return normalized;
    if (normalized.unknown.length > 0 && !this.warnedUnknown.has(record.version)) {
      this.warnedUnknown.add(record.version);
      this.logger.warn("config version has fields this build does not know; ignoring them", {
        version: record.version,
        fields: normalized.unknown.map((u) => u.path),
      });
    }
    return { ok: true, value: deepFreeze(decodeConfig(this.definition, normalized.json)), canonical: JSON.stringify(normalized.json) };
  };

  /** From the watcher: a new version is in force. */
  applied(next: Applied<T>, prev: Applied<T> | undefined): void {
    this.source = "etcd";
    const { record } = next;
    this.logger.info("config version in force", { version: record.version, kind: record.kind, author: record.author, previousVersion: prev?.record.version });
    if (this.options.cacheFile) {
      try {
        writeCacheFile(this.options.cacheFile, this.identity, record);
      } catch (err) {
        this.logger.warn("cannot write the config cache file", { file: this.options.cacheFile, err });
      }
    }
    if (!prev || prev.canonical === next.canonical) return;
    const change: ConfigChange = {
      version: record.version,
      previousVersion: prev.record.version,
      kind: record.kind,
      author: record.author,
      at: record.at,
      comment: record.comment,
    };
    for (const listener of [...this.listeners]) {
      try {
        listener(next.value, prev.value, change);
      } catch (err) {
        this.logger.error("config watch listener threw", { version: record.version, err });
      }
    }
  }

  /** The first config: from etcd within `waitMs`, else the cache file; `defaults` when nothing is stored. */
  async start(waitMs: number, endpoints: readonly string[]): Promise<void> {
    const deadline = Date.now() + waitMs;
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 });
    let lastError: unknown;
    let issues: readonly ConfigIssue[] | undefined;
    for (;;) {
      try {
        issues = await this.watcher.sync();
        break;
      } catch (err) {
        lastError = err;
        const left = deadline - Date.now();
        if (left <= 0) break;
        await sleep(Math.min(backoff.next(), left));
      }
    }
    const label = `${this.identity.app}@${this.identity.env}`;
    const synced = this.watcher.isSynced;
    const pointerProblem = this.watcher.unreadablePointer;
    if (synced && this.watcher.state) {
      // In force from etcd.
    } else if (synced && issues) {
      if (!this.seedFromCache("the stored version is invalid")) throw new ConfigValidationError(issues, `${label} config`);
    } else if (synced && !this.watcher.hasTarget && pointerProblem) {
      if (!this.seedFromCache("the current pointer is unreadable")) {
        throw new ConfigError(`${label}: the current pointer is unreadable (${pointerProblem}); write a new version or roll back to repair it`);
      }
    } else if (synced) {
      if (this.options.defaults === undefined) {
        throw new ConfigError(`no config stored for ${label} (namespace ${this.identity.namespace}): write one with \`protomesh config import\` or pass \`defaults\``);
      }
      this.seedDefaults();
    } else {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      if (!this.seedFromCache(`etcd is unreachable (${why})`)) {
        throw new ConfigError(`cannot read the config of ${label} from etcd at ${endpoints.join(",")} within ${waitMs} ms (${why}), and there is no usable cache file`);
      }
    }
    this.watcher.start();
  }

  private seedFromCache(why: string): boolean {
    const file = this.options.cacheFile;
    if (!file) return false;
    const cached = readCacheFile(file, this.identity);
    if (!cached.ok) {
      this.logger.warn("cannot use the config cache file", { file, reason: cached.reason });
      return false;
    }
    const decoded = this.decoder(cached.record);
    if (!decoded.ok) {
      this.logger.warn("the config cache file does not match the schema", { file, issues: decoded.issues });
      return false;
    }
    this.watcher.seed({ record: cached.record, value: decoded.value, canonical: decoded.canonical });
    this.source = "cache";
    this.logger.warn(`${why}; serving config version ${cached.record.version} from the cache file`, { file, savedAt: cached.savedAt });
    return true;
  }

  private seedDefaults(): void {
    const json = encodeConfig(this.definition, this.options.defaults as DeepPartial<T>);
    const record: VersionRecord = { version: 0, type: this.definition.typeName, value: json, author: "", at: new Date(0).toISOString(), comment: "defaults", kind: "set", base: 0 };
    const decoded = this.decoder(record);
    if (!decoded.ok) throw new ConfigValidationError(decoded.issues, "config defaults");
    this.watcher.seed({ record, value: decoded.value, canonical: decoded.canonical });
    this.source = "defaults";
    this.logger.info("nothing stored yet; using the defaults until a version is written");
  }

  private inForce(): Applied<T> {
    const state = this.watcher.state;
    if (!state) throw new ConfigError("config is not loaded");
    return state;
  }
}

function deepFreeze<V>(value: V): V {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
