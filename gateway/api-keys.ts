import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Etcd3, IEvent } from "etcd3";
import { Backoff } from "../registry/etcd/backoff";
import { runListWatch } from "../registry/etcd/list-watch";
import { readPrefix } from "../registry/etcd/read-prefix";
import type { Logger } from "../runtime/logger";

/**
 * API keys, stored in etcd under `/protomesh/<ns>/gateway/<name>/keys/<id>`
 * as a SHA-256 hash: the plain key is shown once, at creation, and never
 * stored. A key reads `pmk_<id>_<secret>`; the id finds the record, the
 * secret's hash is compared in constant time. Keys carry 256 random bits, so
 * a fast hash is enough (a slow KDF protects low-entropy passwords, not these).
 */

export interface ApiKeyRecord {
  readonly id: string;
  /** hex SHA-256 of the secret part. */
  readonly hash: string;
  /** Who or what the key is for. */
  readonly name: string;
  readonly createdAt: string;
  /** Scopes granted, checked like a token's. */
  readonly scopes: readonly string[];
}

export function keysPrefix(namespace: string, gateway: string): string {
  return `/protomesh/${namespace}/gateway/${gateway}/keys/`;
}

const KEY_FORMAT = /^pmk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** Creates a key record and the plain key to hand out (once). */
export function newApiKey(name: string, scopes: readonly string[] = []): { key: string; record: ApiKeyRecord } {
  const id = randomBytes(9).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "0").slice(0, 12);
  const secret = randomBytes(32).toString("base64url");
  return { key: `pmk_${id}_${secret}`, record: { id, hash: sha256(secret), name, createdAt: new Date().toISOString(), scopes: [...scopes] } };
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The record `key` belongs to, when it is well-formed and its secret matches. */
export function checkApiKey(key: string, lookup: (id: string) => ApiKeyRecord | undefined): ApiKeyRecord | undefined {
  const m = KEY_FORMAT.exec(key);
  if (!m) return undefined;
  const record = lookup(m[1]);
  if (!record) return undefined;
  const want = Buffer.from(record.hash, "hex");
  const got = createHash("sha256").update(m[2]).digest();
  return want.length === got.length && timingSafeEqual(want, got) ? record : undefined;
}

/** Writes, deletes and lists key records (the CLI's `gateway keys`). */
export class ApiKeyAdmin {
  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
  ) {}

  async create(name: string, scopes: readonly string[] = []): Promise<{ key: string; record: ApiKeyRecord }> {
    const made = newApiKey(name, scopes);
    await this.client.put(this.prefix + made.record.id).value(JSON.stringify(made.record));
    return made;
  }

  /** Deletes key `id`; false when there was none. */
  async revoke(id: string): Promise<boolean> {
    const res = await this.client.delete().key(this.prefix + id);
    return Number(res.deleted) > 0;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const { kvs } = await readPrefix(this.client, this.prefix);
    return kvs.flatMap((kv) => {
      const r = parseRecord(kv.value);
      return r ? [r] : [];
    });
  }
}

function parseRecord(value: Buffer): ApiKeyRecord | undefined {
  try {
    const r = JSON.parse(value.toString("utf8")) as ApiKeyRecord;
    return typeof r.id === "string" && typeof r.hash === "string" && /^[0-9a-f]{64}$/.test(r.hash) ? { ...r, scopes: Array.isArray(r.scopes) ? r.scopes : [] } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every key record, kept current by a list-then-watch on the prefix: a
 * revoked key stops working as soon as the delete reaches the gateway.
 * While etcd is unreachable the last known set stays in force.
 */
export class ApiKeyCache {
  private readonly records = new Map<string, ApiKeyRecord>();
  private rev = 0n;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly callTimeoutMs: number,
    private readonly logger: Logger,
  ) {}

  lookup = (id: string): ApiKeyRecord | undefined => this.records.get(id);

  get size(): number {
    return this.records.size;
  }

  /** Reads the keys once, then follows changes in the background. */
  async start(): Promise<void> {
    await this.sync();
    this.loop = runListWatch(
      {
        client: this.client,
        prefix: this.prefix,
        callTimeoutMs: this.callTimeoutMs,
        backoff: new Backoff(),
        sync: () => this.sync(),
        revision: () => this.rev,
        apply: (events) => this.apply(events),
        onWatching: () => undefined,
        onFailure: (err) => void (!this.abort.signal.aborted && this.logger.warn("api keys: etcd watch failed; keeping the last known keys", { err: String(err) })),
        onCompacted: () => undefined,
      },
      this.abort.signal,
      true,
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async sync(): Promise<void> {
    const { kvs, revision } = await readPrefix(this.client, this.prefix);
    this.records.clear();
    for (const kv of kvs) {
      const r = parseRecord(kv.value);
      if (r) this.records.set(r.id, r);
    }
    this.rev = revision;
  }

  private apply(events: IEvent[]): void {
    for (const e of events) {
      const rev = BigInt(e.kv.mod_revision);
      if (rev <= this.rev) continue;
      const id = e.kv.key.toString("utf8").slice(this.prefix.length);
      if (e.type === "Delete") this.records.delete(id);
      else {
        const r = parseRecord(e.kv.value);
        if (r) this.records.set(r.id, r);
      }
      this.rev = rev;
    }
  }
}
