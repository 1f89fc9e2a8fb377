/**
 * Every registered instance of every service, kept current from one etcd
 * list-then-watch of `/protomesh/<namespace>/services/`. The Services page
 * asks it for a filtered, sorted window, so the browser never holds 10,000
 * rows; each change is also announced to `onChange` listeners.
 */
import type { Etcd3, IEvent, IKeyValue } from "etcd3";
import { Backoff } from "../../registry/etcd/backoff";
import { decodeInstance } from "../../registry/etcd/keys";
import { runListWatch } from "../../registry/etcd/list-watch";
import { readPrefix } from "../../registry/etcd/read-prefix";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import { DRAINING_METADATA } from "../../runtime/balancing/instances";
import type { Logger } from "../../runtime/logger";

/** One instance as the console shows it. */
export interface InstanceRow extends InstanceInfo {
  readonly key: string;
  /** Lease id (decimal) holding the key; "0" for a key without lease. */
  readonly lease: string;
  readonly draining: boolean;
  readonly modRevision: string;
}

export interface ServiceSummary {
  readonly name: string;
  readonly instances: number;
  readonly draining: number;
  readonly versions: string[];
  readonly zones: string[];
  /** Entries under the prefix that do not parse (shown, never used). */
  readonly invalid: number;
}

export interface InstanceChange {
  readonly service: string;
  readonly id: string;
  readonly kind: "put" | "delete";
}

export interface InstanceQuery {
  readonly service?: string;
  /** Case-insensitive substring of id, address, version, zone, service or a metadata value. */
  readonly q?: string;
  readonly offset?: number;
  readonly limit?: number;
}

export class ServiceIndex {
  private readonly services = new Map<string, Map<string, InstanceRow>>();
  private readonly invalid = new Map<string, Map<string, string>>();
  private readonly listeners = new Set<(change: InstanceChange) => void>();
  private readonly abort = new AbortController();
  private readonly prefix: string;
  private rev = 0n;
  private sorted: InstanceRow[] | undefined;
  /** Per-service summaries, dropped for a service when it changes (200 services × 50 instances: no full rescan per event). */
  private readonly summaryCache = new Map<string, ServiceSummary>();
  private loop: Promise<void> | undefined;
  private firstSync: Promise<void>;
  private resolveFirst!: () => void;
  private lastError: string | undefined;

  constructor(
    private readonly client: Etcd3,
    namespace: string,
    private readonly callTimeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.prefix = `/protomesh/${namespace}/services/`;
    this.firstSync = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  /** Starts following etcd; resolves after the first full read. */
  async start(): Promise<void> {
    this.loop ??= runListWatch(
      {
        client: this.client,
        prefix: this.prefix,
        callTimeoutMs: this.callTimeoutMs,
        backoff: new Backoff({ initialMs: 100, maxMs: 2000 }),
        sync: () => this.sync(),
        revision: () => this.rev,
        apply: (events) => this.apply(events),
        onWatching: () => (this.lastError = undefined),
        onFailure: (err) => {
          this.lastError = err instanceof Error ? err.message : String(err);
          this.logger.warn("console: etcd watch of services failed; retrying (the page keeps the last known instances)", { err: this.lastError });
        },
        onCompacted: () => this.logger.info("console: services watch fell behind compaction; re-reading"),
      },
      this.abort.signal,
    );
    await this.firstSync;
  }

  /** Why etcd is not being followed right now, if it is not. */
  get problem(): string | undefined {
    return this.lastError;
  }

  get revision(): bigint {
    return this.rev;
  }

  get size(): number {
    let n = 0;
    for (const m of this.services.values()) n += m.size;
    return n;
  }

  onChange(listener: (change: InstanceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Services matching `q` (substring of the name), sorted by name. */
  summaries(q = ""): ServiceSummary[] {
    const needle = q.toLowerCase();
    const names = new Set([...this.services.keys(), ...this.invalid.keys()]);
    return [...names]
      .filter((n) => n.toLowerCase().includes(needle))
      .sort()
      .map((name) => {
        let summary = this.summaryCache.get(name);
        if (!summary) {
          const rows = [...(this.services.get(name)?.values() ?? [])];
          summary = {
            name,
            instances: rows.length,
            draining: rows.filter((r) => r.draining).length,
            versions: [...new Set(rows.map((r) => r.version))].sort(),
            zones: [...new Set(rows.map((r) => r.zone))].sort(),
            invalid: this.invalid.get(name)?.size ?? 0,
          };
          this.summaryCache.set(name, summary);
        }
        return summary;
      });
  }

  /** A window of the instances matching the query, sorted by service then id, and how many match in all. */
  instances(query: InstanceQuery): { total: number; offset: number; items: InstanceRow[] } {
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? 100)), 1000);
    let rows: readonly InstanceRow[] = query.service ? this.sortedOf(query.service) : this.all();
    const needle = (query.q ?? "").trim().toLowerCase();
    if (needle) rows = rows.filter((r) => matches(r, needle));
    return { total: rows.length, offset, items: rows.slice(offset, offset + limit) };
  }

  get(service: string, id: string): InstanceRow | undefined {
    return this.services.get(service)?.get(id);
  }

  /** Entries of `service` that do not parse, with why. */
  invalidEntries(service: string): { key: string; reason: string }[] {
    return [...(this.invalid.get(service)?.entries() ?? [])].map(([key, reason]) => ({ key, reason }));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.resolveFirst();
    await this.loop;
  }

  private all(): InstanceRow[] {
    if (!this.sorted) {
      const rows: InstanceRow[] = [];
      for (const name of [...this.services.keys()].sort()) rows.push(...this.sortedOf(name));
      this.sorted = rows;
    }
    return this.sorted;
  }

  private sortedOf(service: string): InstanceRow[] {
    return [...(this.services.get(service)?.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private async sync(): Promise<void> {
    const { kvs, revision } = await readPrefix(this.client, this.prefix);
    const before = new Set<string>();
    for (const [service, m] of this.services) for (const id of m.keys()) before.add(`${service}/${id}`);
    this.services.clear();
    this.invalid.clear();
    this.summaryCache.clear();
    for (const kv of kvs) this.put(kv);
    this.rev = revision;
    this.sorted = undefined;
    // After a re-read, tell listeners about everything (cheap: they coalesce).
    for (const [service, m] of this.services) for (const id of m.keys()) this.emit({ service, id, kind: "put" });
    for (const gone of before) {
      const [service, id] = splitOnce(gone);
      if (!this.services.get(service)?.has(id)) this.emit({ service, id, kind: "delete" });
    }
    this.resolveFirst();
  }

  private apply(events: IEvent[]): void {
    for (const event of events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= this.rev && event.type === "Put") continue;
      const where = this.where(event.kv.key.toString());
      if (!where) continue;
      if (event.type === "Delete") {
        this.services.get(where.service)?.delete(where.id);
        if (this.services.get(where.service)?.size === 0) this.services.delete(where.service);
        this.invalid.get(where.service)?.delete(event.kv.key.toString());
        if (this.invalid.get(where.service)?.size === 0) this.invalid.delete(where.service);
        this.emit({ service: where.service, id: where.id, kind: "delete" });
      } else {
        this.put(event.kv);
        this.emit({ service: where.service, id: where.id, kind: "put" });
      }
      this.sorted = undefined;
    }
    const last = events.at(-1);
    if (last) {
      const r = BigInt(last.kv.mod_revision);
      if (r > this.rev) this.rev = r;
    }
  }

  private put(kv: IKeyValue): void {
    const key = kv.key.toString();
    const where = this.where(key);
    if (!where) return;
    const decoded = decodeInstance({ prefix: `${this.prefix}${where.service}/`, service: where.service }, kv.key, kv.value);
    const byId = this.services.get(where.service) ?? new Map<string, InstanceRow>();
    if (!decoded.ok) {
      byId.delete(where.id);
      const bad = this.invalid.get(where.service) ?? new Map<string, string>();
      bad.set(key, decoded.reason);
      this.invalid.set(where.service, bad);
      if (byId.size === 0) this.services.delete(where.service);
      return;
    }
    this.invalid.get(where.service)?.delete(key);
    byId.set(where.id, {
      ...decoded.instance,
      key,
      lease: String(kv.lease ?? "0"),
      draining: decoded.instance.metadata[DRAINING_METADATA] === "true",
      modRevision: String(kv.mod_revision),
    });
    this.services.set(where.service, byId);
  }

  private where(key: string): { service: string; id: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf("/");
    if (slash <= 0 || slash === rest.length - 1) return undefined;
    return { service: rest.slice(0, slash), id: rest.slice(slash + 1) };
  }

  private emit(change: InstanceChange): void {
    this.summaryCache.delete(change.service);
    for (const l of this.listeners) l(change);
  }
}

function matches(r: InstanceRow, needle: string): boolean {
  if (r.id.toLowerCase().includes(needle) || r.address.includes(needle) || r.service.toLowerCase().includes(needle)) return true;
  if (r.version.toLowerCase().includes(needle) || r.zone.toLowerCase().includes(needle)) return true;
  if (needle === "draining" && r.draining) return true;
  for (const v of Object.values(r.metadata)) if (v.toLowerCase().includes(needle)) return true;
  return false;
}

function splitOnce(s: string): [string, string] {
  const i = s.indexOf("/");
  return [s.slice(0, i), s.slice(i + 1)];
}
