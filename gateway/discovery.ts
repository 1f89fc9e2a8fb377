import type { Etcd3, IEvent } from "etcd3";
import { Backoff } from "../registry/etcd/backoff";
import { runListWatch } from "../registry/etcd/list-watch";
import { readPrefix } from "../registry/etcd/read-prefix";
import { ReflectionClient } from "../explorer/reflection-client";
import type { Logger } from "../runtime/logger";
import type { RouteTable } from "./route-table";
import type { Upstreams } from "./upstreams";

/**
 * Routes from the registry: every registered service name is asked, through
 * gRPC reflection on its own `etcd:///<name>` channel, which proto services it
 * serves and for their descriptors. A service that registers later (or an
 * instance of a new version) is reflected again, so its routes appear
 * without restarting the gateway. Reflection failing keeps the routes the
 * gateway had; the last instance leaving removes them.
 */

export interface RegistryRoutesOptions {
  readonly client: Etcd3;
  readonly namespace: string;
  readonly callTimeoutMs: number;
  readonly table: RouteTable;
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  /** Only these registry names (default all). */
  readonly only?: readonly string[];
  /** Pause before reflecting after a change, to coalesce a burst of registrations (ms, default 200). */
  readonly settleMs?: number;
  /** Hears each refresh (for tests and logs). */
  readonly onRefresh?: (name: string, routes: number, error?: Error) => void;
}

export class RegistryRoutes {
  private readonly prefix: string;
  private readonly instances = new Map<string, Set<string>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private rev = 0n;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: RegistryRoutesOptions) {
    this.prefix = `/protomesh/${o.namespace}/services/`;
  }

  /** Reads the registry, reflects every service once, then follows changes. */
  async start(): Promise<void> {
    await this.sync();
    await Promise.all([...this.instances.keys()].map((name) => this.refresh(name)));
    this.loop = runListWatch(
      {
        client: this.o.client,
        prefix: this.prefix,
        callTimeoutMs: this.o.callTimeoutMs,
        backoff: new Backoff(),
        sync: () => this.sync(true),
        revision: () => this.rev,
        apply: (events) => this.apply(events),
        onWatching: () => undefined,
        onFailure: (err) => void (!this.abort.signal.aborted && this.o.logger.warn("gateway discovery: registry watch failed; keeping current routes", { err: String(err) })),
        onCompacted: () => undefined,
      },
      this.abort.signal,
      true,
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    await this.loop;
    await Promise.allSettled([...this.pending]);
  }

  private async sync(schedule = false): Promise<void> {
    const { kvs, revision } = await readPrefix(this.o.client, this.prefix);
    const seen = new Map<string, Set<string>>();
    for (const kv of kvs) {
      const parsed = this.parse(kv.key.toString("utf8"));
      if (!parsed) continue;
      let set = seen.get(parsed.name);
      if (!set) seen.set(parsed.name, (set = new Set()));
      set.add(parsed.id);
    }
    const changed = [...new Set([...seen.keys(), ...this.instances.keys()])];
    this.instances.clear();
    for (const [k, v] of seen) this.instances.set(k, v);
    this.rev = revision;
    if (schedule) for (const name of changed) this.schedule(name);
  }

  private parse(key: string): { name: string; id: string } | undefined {
    const rest = key.slice(this.prefix.length).split("/");
    if (rest.length !== 2 || rest[0] === "" || rest[1] === "") return undefined;
    if (this.o.only && !this.o.only.includes(rest[0])) return undefined;
    return { name: rest[0], id: rest[1] };
  }

  private apply(events: IEvent[]): void {
    for (const e of events) {
      const rev = BigInt(e.kv.mod_revision);
      if (rev <= this.rev) continue;
      this.rev = rev;
      const parsed = this.parse(e.kv.key.toString("utf8"));
      if (!parsed) continue;
      let set = this.instances.get(parsed.name);
      if (e.type === "Delete") {
        set?.delete(parsed.id);
        if (set && set.size === 0) this.instances.delete(parsed.name);
        if (!this.instances.has(parsed.name)) this.schedule(parsed.name);
      } else {
        const isNew = !set?.has(parsed.id);
        if (!set) this.instances.set(parsed.name, (set = new Set()));
        set.add(parsed.id);
        // Lease renewals rewrite nothing; a new instance id may be a new version with new methods.
        if (isNew) this.schedule(parsed.name);
      }
    }
  }

  private schedule(name: string): void {
    clearTimeout(this.timers.get(name));
    const t = setTimeout(() => {
      this.timers.delete(name);
      const p = this.refresh(name).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }, this.o.settleMs ?? 200);
    t.unref();
    this.timers.set(name, t);
  }

  private async refresh(name: string): Promise<void> {
    const id = `registry:${name}`;
    if (!this.instances.has(name)) {
      this.o.table.remove(id);
      this.o.onRefresh?.(name, 0);
      return;
    }
    const target = `etcd:///${name}`;
    const reflection = new ReflectionClient(this.o.upstreams.client(target), { deadline: Date.now() + 10_000 });
    try {
      const services = (await reflection.listServices()).filter((s) => !s.startsWith("grpc.reflection.") && !s.startsWith("grpc.health."));
      for (const s of services) await reflection.loadSymbol(s);
      const routes = this.o.table.put({ id, target, files: reflection.pool.protos(), services });
      this.o.logger.info("gateway discovery: routes updated", { service: name, routes: routes.length });
      this.o.onRefresh?.(name, routes.length);
    } catch (err) {
      this.o.logger.warn("gateway discovery: cannot derive routes; keeping the previous ones", { service: name, err: (err as Error).message });
      this.o.onRefresh?.(name, -1, err as Error);
    } finally {
      reflection.close();
    }
  }
}
