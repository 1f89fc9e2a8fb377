/**
 * `protomesh release controller`: drives every unfinished release of a namespace. Ownership of a
 * release is a key under this controller's etcd lease, taken only when free, so two controllers
 * never drive one release; when a controller dies its lease expires and another one (or the same
 * one restarted) takes over from the state stored in etcd.
 */
import { randomBytes } from "node:crypto";
import type { Etcd3, Lease } from "etcd3";
import { getLogger, type Logger } from "../../runtime/logger";
import { judge } from "../analysis/judge";
import { sourceFor, type MetricSource } from "../analysis/metric-source";
import { nextAction, recordMeasurement } from "../machine";
import { isDone, type ReleaseState } from "../state";
import { openTrafficStore } from "../../traffic/store";
import { commit, type RuleStore } from "./apply";
import { releaseKeys, ReleaseStateStore, StateConflictError } from "./state-store";

export interface ReleaseControllerOptions {
  readonly client: Etcd3;
  readonly namespace: string;
  /** Names this controller in owner keys and logs (default: host-pid-random). */
  readonly id?: string;
  /** Lease TTL: how long a dead controller's releases wait for another one (default 10 s; etcd's minimum is 2). */
  readonly leaseTtlSeconds?: number;
  /** How often releases are looked at (default 500 ms). */
  readonly tickMs?: number;
  /** The rule store of a service (default: the traffic store, on this controller's etcd client). */
  readonly ruleStore?: (service: string) => RuleStore;
  readonly logger?: Logger;
}

export class ReleaseController {
  readonly id: string;
  private readonly store: ReleaseStateStore;
  private readonly logger: Logger;
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Per release id: its metric source (a scrape source keeps the previous scrape) and when to measure again. */
  private readonly sources = new Map<string, MetricSource>();
  private readonly notBefore = new Map<string, number>();

  constructor(private readonly options: ReleaseControllerOptions) {
    this.id = options.id ?? `${process.pid}-${randomBytes(3).toString("hex")}`;
    this.store = new ReleaseStateStore(options.client, options.namespace);
    this.logger = options.logger ?? getLogger().child({ component: "release.controller", controller: this.id });
  }

  async start(): Promise<void> {
    await this.grant();
    const tick = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: unknown) => this.logger.warn("release tick failed", { err }))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.tickMs ?? 500);
        });
    };
    tick();
  }

  /** Stops driving and gives up ownership at once (revokes the lease). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.lease?.revoke().catch(() => undefined);
  }

  private async grant(): Promise<void> {
    const lease = this.options.client.lease(this.options.leaseTtlSeconds ?? 10);
    this.leaseId = await lease.grant();
    this.lease = lease;
    lease.on("lost", (err) => {
      // Our owner keys are gone with the lease: another controller may take them. Get a new lease and compete again.
      this.logger.warn("release controller lost its etcd lease; taking a new one", { err });
      this.lease = undefined;
      this.leaseId = undefined;
      if (!this.stopped) void this.grant().catch((e: unknown) => this.logger.warn("lease grant failed", { err: e }));
    });
  }

  /** One pass over every unfinished release. */
  async tick(): Promise<void> {
    if (this.leaseId === undefined) return;
    const { releases, unreadable } = await this.store.list();
    for (const u of unreadable) this.logger.warn("skipping an unreadable release", { reason: u });
    await Promise.all(
      releases
        .filter((r) => !isDone(r.state.phase))
        .map(async (r) => {
          if (!(await this.own(r.state.spec.service))) return;
          try {
            await this.drive(r.state.spec.service);
          } catch (err) {
            if (err instanceof StateConflictError) return; // someone (a command) changed it: next tick reads it again
            this.logger.warn("release step failed; retrying on the next tick", { service: r.state.spec.service, err });
          }
        }),
    );
  }

  /** Takes the release's owner key if free; true when this controller holds it. */
  private async own(service: string): Promise<boolean> {
    const { owner } = releaseKeys(this.options.namespace, service);
    const client = this.options.client;
    const leaseId = this.leaseId;
    if (leaseId === undefined) return false;
    const res = await client.if(owner, "Create", "==", 0).then(client.put(owner).value(this.id).lease(leaseId)).else(client.get(owner)).commit();
    if (res.succeeded) {
      this.logger.info("took over a release", { service });
      return true;
    }
    return res.responses[0]?.response_range?.kvs[0]?.value.toString() === this.id;
  }

  private rules(service: string): RuleStore {
    return this.options.ruleStore?.(service) ?? openTrafficStore({ client: this.options.client, namespace: this.options.namespace, service, author: `protomesh release controller ${this.id}` });
  }

  /** Carries out every action that is due for one release. */
  private async drive(service: string): Promise<void> {
    const rules = this.rules(service);
    for (let i = 0; i < 20 && !this.stopped; i++) {
      const stored = await this.store.get(service);
      if (!stored) return;
      const { state } = stored;
      const now = Date.now();
      const action = nextAction(state, now);
      if (action.kind === "wait") return;
      if (action.kind === "apply") {
        const after = await commit(this.store, rules, action.transition, stored.modRevision, this.id);
        // A new weight starts a new window: a scraping source takes its baseline now.
        if (action.transition.rule && !isDone(after.state.phase)) await this.prime(after.state);
        continue;
      }
      const wait = this.notBefore.get(state.id);
      if (wait !== undefined && now < wait) return;
      const analysis = state.spec.analysis!;
      const sides = await this.source(state).measure(service, state.spec.canary, state.spec.stable, analysis.intervalMs);
      if (sides === undefined) {
        this.notBefore.set(state.id, now + analysis.intervalMs);
        return;
      }
      this.notBefore.delete(state.id);
      const measurement = judge(analysis, sides.canary, sides.stable, now);
      this.logger.info("analysis measurement", { service, verdict: measurement.verdict, canary: sides.canary, stable: sides.stable });
      await commit(this.store, rules, recordMeasurement(state, measurement, now), stored.modRevision, this.id);
    }
  }

  private source(state: ReleaseState): MetricSource {
    let source = this.sources.get(state.id);
    if (!source) this.sources.set(state.id, (source = sourceFor(state.spec.analysis!, this.options.client, this.options.namespace)));
    return source;
  }

  private async prime(state: ReleaseState): Promise<void> {
    if (!state.spec.analysis) return;
    await this.source(state).measure(state.spec.service, state.spec.canary, state.spec.stable, state.spec.analysis.intervalMs).catch(() => undefined);
  }
}

