/**
 * Reading and writing services' traffic rules in etcd, versioned like config: every write is a
 * new numbered version (who, when, why), the rule in force sits in one key per service that
 * clients watch, and each write is one Txn that succeeds only if its version number is new and
 * the rule in force has not moved since it was read, so two operators never both "win". The
 * version record, audit limits and conflict error are the config center's own.
 *
 * ```ts
 * const store = openTrafficStore({ service: "greeter" });
 * const v = await store.write(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 5 }), { comment: "canary 5 %" });
 * await store.rollback(v.version - 1, { comment: "abort" });
 * ```
 */
import { hostname, userInfo } from "node:os";
import type { Etcd3, IRangeResponse } from "etcd3";
import { checkAudit, decodeRecord, encodeRecord, type JsonObject, type VersionKind, type VersionRecord } from "../config/records";
import { ConflictError } from "../config/errors";
import { createEtcdClient, resolveEtcdOptions, resolveNamespace, type EtcdOptions } from "../registry/etcd/options";
import { MAX_TRAFFIC_RECORD_BYTES, TRAFFIC_VERSION_DIGITS, trafficKeys, type TrafficKeys } from "../registry/etcd/traffic-keys";
import { compileTrafficRule, type CompiledRule } from "../runtime/balancing/rule-compile";
import type { TrafficRule } from "../runtime/balancing/traffic-rule";
import { getLogger, type Logger } from "../runtime/logger";

/** The `type` recorded with every traffic version. */
export const TRAFFIC_RULE_TYPE = "protomesh.traffic.Rule";

/** One stored version of a service's rule. */
export interface TrafficVersion extends VersionRecord {
  readonly value: TrafficRule & JsonObject;
}

export interface TrafficStoreOptions extends EtcdOptions {
  service: string;
  /**
   * An etcd client to share (a process writing many services' rules, such as a release
   * controller, keeps one connection); `close()` then leaves it open. Default: a client of its own.
   */
  client?: Etcd3;
  /** Recorded as the author of writes. Default: `PROTOMESH_USER`, else `user@host`. */
  author?: string;
}

export interface TrafficWriteOptions {
  comment?: string;
  author?: string;
  /** Write only if this is still the version in force (0: only if the service has no rule). */
  expectVersion?: number;
}

/** A traffic-store failure worth one line (not found, unreadable, too many writers). */
export class TrafficStoreError extends Error {
  override readonly name = "TrafficStoreError";
}

const MAX_ATTEMPTS = 20;
const MAX_VERSION = 10 ** TRAFFIC_VERSION_DIGITS - 1;

export function openTrafficStore(options: TrafficStoreOptions): TrafficStore {
  return new TrafficStore(options);
}

export class TrafficStore {
  readonly service: string;
  readonly namespace: string;
  readonly keys: TrafficKeys;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly author: string;
  private readonly logger: Logger;

  constructor(options: TrafficStoreOptions) {
    const logger = options.logger ?? getLogger().child({ component: "traffic" });
    const resolved = options.client ? undefined : resolveEtcdOptions({ ...options, logger });
    this.service = options.service;
    this.namespace = resolved?.namespace ?? resolveNamespace(options.namespace);
    this.keys = trafficKeys(this.namespace, options.service);
    this.author = options.author ?? defaultAuthor();
    this.logger = logger.child({ service: options.service });
    this.ownsClient = resolved !== undefined;
    this.client = options.client ?? createEtcdClient(resolved!);
  }

  /** The version in force, or undefined when the service has no rule. Throws when the stored value is unreadable. */
  async current(): Promise<TrafficVersion | undefined> {
    const res = await this.client.kv.range({ key: Buffer.from(this.keys.current) });
    const kv = res.kvs[0];
    return kv === undefined ? undefined : this.decode(kv.value, undefined, this.keys.current);
  }

  /** One version; throws {@link TrafficStoreError} when it does not exist or cannot be read. */
  async get(version: number): Promise<TrafficVersion> {
    const res = await this.client.kv.range({ key: Buffer.from(this.keys.version(version)) });
    const kv = res.kvs[0];
    if (!kv) throw new TrafficStoreError(`${this.service} has no traffic rule version ${version}`);
    return this.decode(kv.value, version, this.keys.version(version));
  }

  /** Versions, newest first; unreadable ones are skipped with a warning. */
  async history(options: { limit?: number } = {}): Promise<TrafficVersion[]> {
    const res = await this.client.kv.range({
      key: Buffer.from(`${this.keys.versions}0`),
      range_end: Buffer.from(`${this.keys.versions}:`),
      sort_order: "Descend",
      sort_target: "Key",
      limit: options.limit ?? 20,
    });
    const out: TrafficVersion[] = [];
    for (const kv of res.kvs) {
      try {
        out.push(this.decode(kv.value, Number(kv.key.toString().slice(this.keys.versions.length)), kv.key.toString()));
      } catch (err) {
        this.logger.warn("skipping unreadable traffic rule version", { key: kv.key.toString(), reason: (err as Error).message });
      }
    }
    return out;
  }

  /** Validates `rule` (throws `TrafficRuleError` naming the bad field) and writes it as the next version, in force at once. */
  async write(rule: unknown, options: TrafficWriteOptions = {}): Promise<TrafficVersion> {
    compileTrafficRule(rule);
    return this.commit(rule as TrafficRule, "set", options);
  }

  /** Puts an earlier version's rule back in force, as a new version. */
  async rollback(version: number, options: TrafficWriteOptions = {}): Promise<TrafficVersion> {
    const target = await this.get(version);
    compileTrafficRule(target.value);
    return this.commit(target.value, "rollback", options, version);
  }

  /** Removes the rule in force (history stays): every instance serves every call again. */
  async remove(options: { expectVersion?: number } = {}): Promise<number | undefined> {
    const res = await this.client.kv.range({ key: Buffer.from(this.keys.current) });
    const kv = res.kvs[0];
    if (!kv) return undefined;
    const version = this.decodeVersionLoosely(kv.value);
    if (options.expectVersion !== undefined && options.expectVersion !== version) throw new ConflictError(options.expectVersion, version, `${this.service} traffic rule version`);
    const txn = await this.client.kv.txn({
      compare: [{ key: Buffer.from(this.keys.current), target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
      success: [{ request_delete_range: { key: Buffer.from(this.keys.current) } }],
    });
    if (!txn.succeeded) throw new TrafficStoreError(`${this.service}: the traffic rule changed meanwhile; look again and retry`);
    return version;
  }

  /** The rule in force, compiled (as clients see it), or undefined. */
  async compiled(): Promise<CompiledRule | undefined> {
    const v = await this.current();
    return v === undefined ? undefined : compileTrafficRule(v.value);
  }

  close(): void {
    if (this.ownsClient) this.client.close();
  }

  /**
   * The write loop: read the rule in force and the highest version, then one Txn guarded by "the
   * version key is new" and "the key in force has not moved". A lost guard means another write
   * landed: with `expectVersion` that is a conflict, otherwise try again on top of it.
   */
  private async commit(rule: TrafficRule, kind: VersionKind, options: TrafficWriteOptions, from?: number): Promise<TrafficVersion> {
    const author = options.author ?? this.author;
    const comment = options.comment ?? "";
    checkAudit(author, comment);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await this.snapshot();
      if (options.expectVersion !== undefined && snap.inForce !== options.expectVersion) {
        throw new ConflictError(options.expectVersion, snap.inForce, `${this.service} traffic rule version`);
      }
      const version = snap.latest + 1;
      if (version > MAX_VERSION) throw new TrafficStoreError(`${this.service} has run out of traffic rule version numbers`);
      const record: TrafficVersion = {
        version,
        type: TRAFFIC_RULE_TYPE,
        value: structuredClone(rule) as TrafficRule & JsonObject,
        author,
        at: new Date().toISOString(),
        comment,
        kind,
        ...(from !== undefined ? { from } : {}),
        base: snap.inForce,
      };
      const text = encodeRecord(record);
      if (Buffer.byteLength(text) > MAX_TRAFFIC_RECORD_BYTES) throw new TrafficStoreError(`the rule is over the ${MAX_TRAFFIC_RECORD_BYTES}-byte limit`);
      const versionKey = Buffer.from(this.keys.version(version));
      const res = await this.client.kv.txn({
        compare: [
          { key: versionKey, target: "Create", result: "Equal", create_revision: 0 },
          { key: Buffer.from(this.keys.current), target: "Mod", result: "Equal", mod_revision: snap.modRevision },
        ],
        success: [
          { request_put: { key: versionKey, value: Buffer.from(text) } },
          { request_put: { key: Buffer.from(this.keys.current), value: Buffer.from(text) } },
        ],
      });
      if (res.succeeded) {
        this.logger.info("traffic rule version written", { version, kind, author, base: snap.inForce });
        return record;
      }
    }
    throw new TrafficStoreError(`${this.service}: too many concurrent writers; try again`);
  }

  /** The version in force (0: none), its mod revision, and the highest version stored, at one revision. */
  private async snapshot(): Promise<{ inForce: number; modRevision: string; latest: number }> {
    const res = await this.client.kv.txn({
      success: [
        { request_range: { key: Buffer.from(this.keys.current) } },
        {
          request_range: {
            key: Buffer.from(`${this.keys.versions}0`),
            range_end: Buffer.from(`${this.keys.versions}:`),
            sort_order: "Descend",
            sort_target: "Key",
            keys_only: true,
            limit: 1,
          },
        },
      ],
    });
    const [current, versions] = res.responses.map((r) => (r.response_range as IRangeResponse).kvs);
    const kv = current[0];
    const last = versions[0];
    const latest = last === undefined ? 0 : Number(last.key.toString().slice(this.keys.versions.length)) || 0;
    const inForce = kv === undefined ? 0 : this.decodeVersionLoosely(kv.value);
    return { inForce, modRevision: kv?.mod_revision ?? "0", latest: Math.max(latest, inForce) };
  }

  /** The version number of a stored value, 0 when unreadable (a garbage value can still be overwritten). */
  private decodeVersionLoosely(bytes: Buffer): number {
    try {
      const v = (JSON.parse(bytes.toString("utf8")) as { version?: unknown }).version;
      return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : 0;
    } catch {
      return 0;
    }
  }

  private decode(bytes: Buffer, expected: number | undefined, key: string): TrafficVersion {
    const version = expected ?? this.decodeVersionLoosely(bytes);
    const decoded = decodeRecord(bytes, version);
    if (!decoded.ok) throw new TrafficStoreError(`${key} is unreadable: ${decoded.reason}`);
    return decoded.value as TrafficVersion;
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
