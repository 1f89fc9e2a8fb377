/**
 * The audit log: one etcd key per change made through the console or the CLI,
 * `/protomesh/<namespace>/console/audit/<epoch ms, 15 digits>-<random>` →
 * `{"at","who","via","action","target","before","after"}`. Keys sort by time,
 * so the newest are one descending range read away. Before/after values are
 * cut at {@link MAX_VALUE_CHARS} so one huge config cannot blow up the log.
 */
import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import { deadlineIn } from "../../registry/etcd/options";
import { prefixEnd } from "../../registry/etcd/watch-stream";

export interface AuditEntry {
  /** ISO 8601. */
  readonly at: string;
  readonly who: string;
  /** `console` or `cli`. */
  readonly via: string;
  /** Verb, e.g. `instance.drain`, `config.publish`, `config.rollback`. */
  readonly action: string;
  /** What it acted on, e.g. `greeter/abc123` or `greeter@prod`. */
  readonly target: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

/** What a caller gives; `at` is filled in. */
export type AuditInput = Omit<AuditEntry, "at">;

export const MAX_VALUE_CHARS = 16 * 1024;

export function auditPrefix(namespace: string): string {
  return `/protomesh/${namespace}/console/audit/`;
}

export class AuditLog {
  private readonly prefix: string;

  constructor(
    private readonly client: Etcd3,
    namespace: string,
    private readonly callTimeoutMs: number,
  ) {
    this.prefix = auditPrefix(namespace);
  }

  async record(input: AuditInput): Promise<AuditEntry> {
    const now = Date.now();
    const entry: AuditEntry = { at: new Date(now).toISOString(), ...input, before: bound(input.before), after: bound(input.after) };
    const key = `${this.prefix}${String(now).padStart(15, "0")}-${randomBytes(4).toString("hex")}`;
    await this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(JSON.stringify(entry)) }, deadlineIn(this.callTimeoutMs));
    return entry;
  }

  /** Newest first, filtered by a substring of who/action/target. */
  async list(options: { limit?: number; filter?: string } = {}): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(1, options.limit ?? 200), 2000);
    const filter = options.filter?.toLowerCase() ?? "";
    const out: AuditEntry[] = [];
    let end = prefixEnd(this.prefix);
    // Read newest-first pages until enough entries pass the filter (or the log ends).
    for (let pages = 0; out.length < limit && pages < 50; pages++) {
      const res = await this.client.kv.range(
        { key: Buffer.from(this.prefix), range_end: end, sort_order: "Descend", sort_target: "Key", limit: 500 },
        deadlineIn(this.callTimeoutMs),
      );
      for (const kv of res.kvs) {
        const entry = decode(kv.value);
        if (entry && (!filter || `${entry.who} ${entry.action} ${entry.target}`.toLowerCase().includes(filter))) out.push(entry);
        if (out.length >= limit) break;
      }
      const last = res.kvs.at(-1);
      if (!res.more || !last) break;
      end = last.key;
    }
    return out;
  }
}

function bound(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? { truncated: true, preview: text.slice(0, MAX_VALUE_CHARS) } : value;
}

function decode(value: Buffer): AuditEntry | undefined {
  try {
    const e = JSON.parse(value.toString("utf8")) as AuditEntry;
    return typeof e.at === "string" && typeof e.who === "string" && typeof e.action === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}
