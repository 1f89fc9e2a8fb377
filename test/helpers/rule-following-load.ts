/**
 * Load that follows a service's traffic rule from etcd: each caller watches the rule key, builds
 * a `TrafficPlan` over the instances and sends every call where the plan says. It stands in for
 * the clients' resolver-fed LB policy in release specs, using the same pure rule evaluation, and
 * records, per call, which version was picked and whether it failed.
 */
import type { Etcd3, Watcher } from "etcd3";
import { compileTrafficRule } from "../../runtime/balancing/rule-compile";
import { TrafficPlan } from "../../runtime/balancing/rule-evaluate";
import { closeClient } from "protomesh";
import { greeterClient } from "./greeter";

export interface LoadInstance {
  readonly id: string;
  readonly version: string;
  readonly address: string;
}

export interface LoadCall {
  readonly at: number;
  readonly caller: number;
  readonly version: string;
  readonly ok: boolean;
  readonly tester: boolean;
}

interface Caller {
  plan: TrafficPlan<LoadInstance> | undefined;
  /** When this caller's plan last changed, and the rule description it holds. */
  changedAt: number;
  description: string;
  watcher?: Watcher;
}

export class RuleFollowingLoad {
  readonly calls: LoadCall[] = [];
  private readonly callers: Caller[] = [];
  private readonly clients = new Map<string, ReturnType<typeof greeterClient>>();
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly etcd: Etcd3,
    private readonly ruleKey: string,
    private readonly instances: readonly LoadInstance[],
  ) {
    for (const i of instances) this.clients.set(i.address, greeterClient(i.address));
  }

  /** Starts `callers` independent callers, each with its own watch, `concurrency` calls in flight each. */
  async start(callers = 3, concurrency = 4, testerShare = 0): Promise<void> {
    for (let c = 0; c < callers; c++) {
      const caller: Caller = { plan: undefined, changedAt: 0, description: "" };
      this.callers.push(caller);
      const apply = (value: Buffer | undefined) => {
        const record = value === undefined ? undefined : (JSON.parse(value.toString()) as { value: unknown });
        const rule = compileTrafficRule(record?.value ?? {});
        caller.plan = new TrafficPlan(rule, this.instances);
        caller.changedAt = Date.now();
        caller.description = (record?.value as { description?: string } | undefined)?.description ?? "";
      };
      caller.watcher = await this.etcd.watch().key(this.ruleKey).create();
      caller.watcher.on("put", (kv) => apply(kv.value));
      apply((await this.etcd.get(this.ruleKey).exec()).kvs[0]?.value);
      for (let k = 0; k < concurrency; k++) this.loops.push(this.loop(c, caller, testerShare));
    }
  }

  private async loop(index: number, caller: Caller, testerShare: number): Promise<void> {
    let n = 0;
    while (this.running) {
      const tester = testerShare > 0 && Math.random() < testerShare;
      const user = `u${index}-${n++ % 50}`;
      const headers: Record<string, string> = { "x-user": user, ...(tester ? { "x-tester": "yes" } : {}) };
      const decision = caller.plan!.decide({ header: (h) => headers[h], hashKey: user });
      const at = Date.now();
      if (decision.status !== "ok" || decision.instances.length === 0) {
        this.calls.push({ at, caller: index, version: "none", ok: false, tester });
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const target = decision.instances[Math.floor(Math.random() * decision.instances.length)]!;
      let ok = true;
      try {
        await this.clients.get(target.address)!.sayHello({ name: user }, { deadlineMs: 5000 });
      } catch {
        ok = false;
      }
      this.calls.push({ at, caller: index, version: target.version, ok, tester });
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** When each caller's plan last changed. */
  changeTimes(): number[] {
    return this.callers.map((c) => c.changedAt);
  }

  /** The description of the rule each caller holds. */
  descriptions(): string[] {
    return this.callers.map((c) => c.description);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.callers) await c.watcher?.cancel();
    for (const client of this.clients.values()) closeClient(client);
  }
}
