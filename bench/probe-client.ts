/**
 * Worker: a protomesh client on `etcd:///<service>` that keeps calling and writes down,
 * on the shared clock, what it sees: when each instance entered and left the endpoint set
 * its resolver handed to grpc-js, when each instance first and last answered, and every
 * failed call. The endpoint set is observed by wrapping the Discovery the resolver uses.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createClient } from "protomesh";
import { etcdRegistry, registerEtcdResolver, type Discovery, type DiscoveryUpdate } from "protomesh/registry";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { sharedNow, sleep } from "./clock";
import { serveCommands } from "./ipc";

export interface ProbeArgs {
  service: string;
  etcdEndpoints: string[];
  namespace: string;
  balancer: "round_robin" | "consistent_hash";
  /** Calls kept in flight. */
  concurrency: number;
  /** Pause after each call in each loop, in ms (0: none), to keep the load light. */
  pauseMs: number;
}

export interface MembershipEvent {
  id: string;
  change: "added" | "removed";
  at: number;
}

export interface Coverage {
  /** Instances with this id prefix that answered at least once. */
  covered: number;
  /** When the last of them answered for the first time. */
  lastFirstAnswerAt: number;
  /** When the first of them answered for the first time. */
  firstAnswerAt: number;
}

const firstAnswer = new Map<string, number>();
const lastAnswer = new Map<string, number>();
const membership: MembershipEvent[] = [];
const failures: { at: number; message: string }[] = [];
let members = new Set<string>();
let updates = 0;
let answered = 0;
let lastUpdateSize = 0;
let createdAt = 0;
let running = false;
let loops: Promise<void>[] = [];
const loopDelay = monitorEventLoopDelay({ resolution: 1 });

function record(update: DiscoveryUpdate): void {
  const at = sharedNow();
  updates++;
  lastUpdateSize = update.instances.length;
  const next = new Set(update.instances.map((i) => i.id));
  for (const id of next) if (!members.has(id)) membership.push({ id, change: "added", at });
  for (const id of members) if (!next.has(id)) membership.push({ id, change: "removed", at });
  members = next;
}

function observed(discovery: Discovery): Discovery {
  return {
    list: (service) => discovery.list(service),
    watch: (service, onUpdate, onError) =>
      discovery.watch(
        service,
        (update) => {
          record(update);
          onUpdate(update);
        },
        onError,
      ),
  };
}

serveCommands({
  init(args: ProbeArgs) {
    registerEtcdResolver();
    const discovery = observed(etcdRegistry({ endpoints: args.etcdEndpoints, namespace: args.namespace }));
    createdAt = sharedNow();
    const client = createClient(GreeterDefinition, `etcd:///${args.service}`, {
      balancer: args.balancer === "consistent_hash" ? { consistentHash: {} } : "round_robin",
      discovery,
      defaultDeadlineMs: 5000,
    });
    running = true;
    loopDelay.enable();
    const loop = async () => {
      while (running) {
        try {
          const reply = await client.sayHello({ name: "probe" });
          const at = sharedNow();
          answered++;
          if (!firstAnswer.has(reply.servedBy)) firstAnswer.set(reply.servedBy, at);
          lastAnswer.set(reply.servedBy, at);
        } catch (err) {
          failures.push({ at: sharedNow(), message: err instanceof Error ? err.message : String(err) });
          await sleep(1);
        }
        if (args.pauseMs > 0) await sleep(args.pauseMs);
      }
    };
    loops = Array.from({ length: args.concurrency }, loop);
    return { createdAt };
  },

  /** Membership changes of `id` (all ids when absent) at or after `since`. */
  membership(args: { id?: string; since?: number }): MembershipEvent[] {
    return membership.filter((e) => (args.id === undefined || e.id === args.id) && e.at >= (args.since ?? 0));
  },

  answers(args: { id: string }): { first: number | null; last: number | null } {
    return { first: firstAnswer.get(args.id) ?? null, last: lastAnswer.get(args.id) ?? null };
  },

  coverage(args: { prefix: string }): Coverage {
    let covered = 0;
    let last = 0;
    let first = Number.POSITIVE_INFINITY;
    for (const [id, at] of firstAnswer) {
      if (!id.startsWith(args.prefix)) continue;
      covered++;
      if (at > last) last = at;
      if (at < first) first = at;
    }
    return { covered, lastFirstAnswerAt: last, firstAnswerAt: first };
  },

  failures(args: { from: number; to: number }): { count: number; sample: string[] } {
    const inRange = failures.filter((f) => f.at >= args.from && f.at <= args.to);
    return { count: inRange.length, sample: [...new Set(inRange.map((f) => f.message))].slice(0, 3) };
  },

  state(): { members: number; updates: number; lastUpdateSize: number; answered: number } {
    return { members: members.size, updates, lastUpdateSize, answered };
  },

  /** Longest event-loop stall since the last reset, in ms; resets. */
  loopStall(): number {
    const maxMs = loopDelay.max / 1e6;
    loopDelay.reset();
    return maxMs;
  },

  /** Heap and RSS after a full collection (the worker runs with --expose-gc). */
  memory(): { rssMiB: number; heapUsedMiB: number } {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    return { rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20 };
  },

  async stop() {
    running = false;
    await Promise.all(loops);
  },
});
