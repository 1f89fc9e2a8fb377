/**
 * Traffic-rule and balancer benchmarks (not timed tests):
 *
 *   node bin/run.js bench/traffic.ts [eval|eval-instructions|pick|split|propagation|propagation-watch|slow|freeze] [--flags]
 *
 * The slow-server and freeze scenarios, as measured for docs/benchmarks.md (quiet machine,
 * `PROTOMESH_LOG_LEVEL=error`); a quick check that they run: `slow --seconds 5 --healthy-seconds 3`.
 *
 *   node bin/run.js bench/traffic.ts slow                # 30 s one-slow window per balancer, ~3 min
 *   node bin/run.js bench/traffic.ts freeze              # p2c and round_robin, ~30 s
 *
 * - eval: CPU time per pick spent in the rule (a 3-subset rule with a header match and a sticky
 *   weighted split), as the picker pays it, and the route choice alone.
 * - eval-instructions (opt-in, needs valgrind): instructions per pick on the same path, by callgrind.
 * - pick (traffic-pick.ts): CPU time per call of p2c's and least_request's own pick path
 *   (pick, start, end) over fake endpoints.
 * - split: share of 10,000 distinct keys a 5 % canary takes, and whether any key changes side
 *   over repeated evaluation.
 * - propagation: a rule write in etcd → each of 10 clients (own etcd connection, own channel)
 *   answered by the new subset; 50 changes; median and p99.
 * - propagation-watch: the same without calls: write → new version in force at 10 discoveries.
 * - slow (traffic-slow.ts): 10 backends in their own processes (lognormal service time, median
 *   4 ms), one turns 10× slower; round_robin, p2c and least_request in one run, healthy baseline
 *   vs one slow: p50/p99/p99.9, success within a deadline, the slow backend's share. Flags:
 *   --seconds (30), --healthy-seconds (10), --warmup-seconds (2), --concurrency (20), --rate (calls/s,
 *   open loop; default: closed loop of --concurrency),
 *   --deadline-ms (200), --median-ms (4), --sigma (0.6), --factor (10), --backends (10),
 *   --processes (2), --pin (servers and etcd on core 0, the client on core 1), --balancers.
 * - freeze (traffic-freeze.ts): 3 greeter processes, one SIGSTOPped for 5 s under load; failed
 *   calls vs calls in flight at the freeze, throughput per 100 ms, seconds to ≥ 80 % of before,
 *   time back in rotation after SIGCONT. Flags: --freeze-seconds (5), --callers (12),
 *   --deadline-ms (2000), --ttl-seconds (10), --balancers (p2c,round_robin).
 *   (--deadline-ms and --balancers are shared by both scenarios; run them separately to differ.)
 */
import * as grpc from "@grpc/grpc-js";
import { createClient, createServer, etcdRegistry, startEmbeddedEtcd, type EtcdRegistry, type Server } from "../index";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { canaryRule } from "../runtime/balancing/rule-builders";
import { compileTrafficRule } from "../runtime/balancing/rule-compile";
import { chooseRoute } from "../runtime/balancing/rule-evaluate";
import { TrafficSelector } from "../runtime/balancing/traffic-selector";
import type { InstanceInfo } from "../runtime/balancing/instances";
import { openTrafficStore } from "../traffic/store";
import { median, percentile } from "./stats";
import { FREEZE_DEFAULTS, freezeScenario } from "./traffic-freeze";
import { pickBench } from "./traffic-pick";
import { SLOW_DEFAULTS, slowScenario } from "./traffic-slow";

const THREE_SUBSETS = {
  subsets: { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } }, testers: { labels: { lane: "qa" } } },
  sticky: { header: "x-user" },
  routes: [
    { name: "qa", match: { headers: { "x-tester": "yes" } }, to: [{ subset: "testers" }] },
    { to: [{ subset: "stable", weight: 95 }, { subset: "canary", weight: 5 }] },
  ],
};

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function evalBench(): void {
  const rule = compileTrafficRule(THREE_SUBSETS);
  const members = Array.from({ length: 10 }, (_, i) => ({
    info: { id: `i${i}`, service: "s", address: `10.0.0.${i}:1`, version: i < 7 ? "v1" : "v2", zone: "z", weight: 1, metadata: i === 9 ? { lane: "qa" } : {}, startedAt: 0 } as InstanceInfo,
    ready: true,
    connecting: false,
  }));
  const selector = new TrafficSelector(rule, members, undefined);
  const users = Array.from({ length: 4096 }, (_, i) => {
    const md = new grpc.Metadata();
    md.set("x-user", `user-${i}`);
    return { metadata: md, extraPickInfo: {} };
  });
  const N = 1_000_000;
  const runs: { select: number; choose: number }[] = [];
  for (let run = 0; run < 5; run++) {
    for (let i = 0; i < 100_000; i++) selector.select(users[i & 4095]); // warm-up
    let t = cpuMicros();
    let sink = 0;
    for (let i = 0; i < N; i++) if (selector.select(users[i & 4095]).kind === "group") sink++;
    const select = (cpuMicros() - t) / N;
    const requests = users.map((u) => ({ header: (h: string) => u.metadata.get(h)[0] as string | undefined }));
    t = cpuMicros();
    for (let i = 0; i < N; i++) if (chooseRoute(rule, requests[i & 4095]).subset === "canary") sink++;
    const choose = (cpuMicros() - t) / N;
    runs.push({ select, choose });
    if (sink < 0) console.log(sink);
  }
  const ns = (x: number) => `${(x * 1000).toFixed(0)} ns`;
  console.log(`eval: 3-subset rule, header match + sticky 95/5 split, 1,000,000 picks × 5 runs (CPU time per pick)`);
  console.log(`  picker path (TrafficSelector.select: metadata read, route choice, cached group): median ${ns(median(runs.map((r) => r.select)))}  runs ${runs.map((r) => ns(r.select)).join(", ")}`);
  console.log(`  route choice alone (chooseRoute):                                              median ${ns(median(runs.map((r) => r.choose)))}  runs ${runs.map((r) => ns(r.choose)).join(", ")}`);
}

/** The picker-path loop of `evalBench`, `picks` times after a warm-up as long; run under callgrind by `evalInstructionsBench`. */
function evalLoop(picks: number): void {
  const rule = compileTrafficRule(THREE_SUBSETS);
  const members = Array.from({ length: 10 }, (_, i) => ({
    info: { id: `i${i}`, service: "s", address: `10.0.0.${i}:1`, version: i < 7 ? "v1" : "v2", zone: "z", weight: 1, metadata: i === 9 ? { lane: "qa" } : {}, startedAt: 0 } as InstanceInfo,
    ready: true,
    connecting: false,
  }));
  const selector = new TrafficSelector(rule, members, undefined);
  const users = Array.from({ length: 4096 }, (_, i) => {
    const md = new grpc.Metadata();
    md.set("x-user", `user-${i}`);
    return { metadata: md, extraPickInfo: {} };
  });
  let sink = 0;
  for (let i = 0; i < 200_000; i++) if (selector.select(users[i & 4095]).kind === "group") sink++;
  for (let i = 0; i < picks; i++) if (selector.select(users[i & 4095]).kind === "group") sink++;
  if (sink < 0) console.log(sink);
}

/**
 * Instructions per pick spent in the rule: the same process run twice under callgrind with
 * 200,000 and 600,000 measured picks (same start-up and warm-up), and the difference in total
 * instructions divided by 400,000. Unlike CPU time, the count does not move with the machine's load.
 */
function evalInstructionsBench(): void {
  const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
  const { mkdtempSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const { tmpdir } = require("node:os") as typeof import("node:os");
  const path = require("node:path") as typeof import("node:path");
  const dir = mkdtempSync(path.join(tmpdir(), "protomesh-rule-cg-"));
  const total = (picks: number): number => {
    const out = path.join(dir, `cg-${picks}.out`);
    const run = spawnSync("valgrind", ["--tool=callgrind", `--callgrind-out-file=${out}`, `--log-file=${out}.log`, process.execPath, path.join(__dirname, "..", "bin", "run.js"), __filename, "eval-loop", String(picks)], {
      stdio: "inherit",
      env: { ...process.env, PROTOMESH_LOG_LEVEL: "error" },
    });
    if (run.status !== 0) throw new Error(`valgrind run with ${picks} picks exited ${run.status}; see ${out}.log`);
    const summary = /^summary:\s+(\d+)/m.exec(readFileSync(out, "utf8"));
    if (!summary) throw new Error(`no summary line in ${out}`);
    return Number(summary[1]);
  };
  const counts = [200_000, 600_000].map((picks) => ({ picks, ir: total(picks) }));
  const perPick = (counts[1].ir - counts[0].ir) / (counts[1].picks - counts[0].picks);
  console.log(`eval (instructions): 3-subset rule, header match + sticky 95/5 split, picker path (TrafficSelector.select), callgrind`);
  console.log(`  ${perPick.toFixed(0)} instructions per pick  (totals ${counts.map((c) => `${c.picks.toLocaleString("en")} picks: ${c.ir.toLocaleString("en")}`).join(", ")}; dumps in ${dir})`);
}

function splitBench(): void {
  const rule = compileTrafficRule(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 5, sticky: { header: "x-user" } }));
  for (const seed of [1, 2, 3]) {
    let canary = 0;
    let flips = 0;
    for (let i = 0; i < 10_000; i++) {
      const request = { hashKey: `s${seed}-user-${i}-${(i * 2654435761) >>> 0}` };
      const first = chooseRoute(rule, request).subset;
      if (first === "canary") canary++;
      for (let k = 0; k < 5; k++) if (chooseRoute(rule, request).subset !== first) flips++;
    }
    console.log(`split: key set ${seed}: 5 % canary took ${(canary / 100).toFixed(2)} % of 10,000 keys; ${flips} side changes over 50,000 re-evaluations`);
  }
}

async function propagationBench(): Promise<void> {
  const etcd = await startEmbeddedEtcd({});
  const namespace = `bench-${process.pid}`;
  const servers: { server: Server; registry: EtcdRegistry }[] = [];
  for (const version of ["v1", "v2"]) {
    const registry = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    const server = createServer({ name: "greeter", registry, instance: { id: version, version } });
    server.add(GreeterDefinition, { sayHello: async () => ({ message: "", servedBy: version }) } as never);
    await server.listen("127.0.0.1:0");
    servers.push({ server, registry });
  }
  const store = openTrafficStore({ service: "greeter", endpoints: etcd.endpoints, namespace });
  const clients = Array.from({ length: 10 }, () => {
    const discovery = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    return { discovery, client: createClient(GreeterDefinition, "etcd:///greeter", { discovery, balancer: "round_robin" }) };
  });
  const to = (v: string) => ({ subsets: { [v]: { labels: { version: v } } }, routes: [{ to: [{ subset: v }] }] });
  await store.write(to("v1"));
  for (const { client } of clients) while ((await client.sayHello({ name: "w" }, { deadlineMs: 5000 })).servedBy !== "v1");
  const delays: number[] = [];
  for (let change = 0; change < 50; change++) {
    const target = change % 2 === 0 ? "v2" : "v1";
    const t0 = performance.now();
    const write = store.write(to(target));
    await Promise.all(
      clients.map(async ({ client }) => {
        for (;;) {
          const r = await client.sayHello({ name: "p" }, { deadlineMs: 5000 });
          if (r.servedBy === target) break;
        }
        delays.push(performance.now() - t0);
      }),
    );
    await write;
  }
  console.log(`propagation: 50 rule changes × 10 clients (each its own etcd connection and channel), write → first call served by the new subset`);
  console.log(`  median ${median(delays).toFixed(1)} ms  p99 ${percentile(delays, 99).toFixed(1)} ms  max ${Math.max(...delays).toFixed(1)} ms`);
  for (const { client, discovery } of clients) {
    client.$close();
    await discovery.close();
  }
  store.close();
  for (const { server, registry } of servers) {
    await server.shutdown({ graceMs: 100 });
    await registry.close();
  }
  await etcd.stop();
}

/**
 * The rule's own delay, without a call loop: 10 discoveries (each its own etcd connection)
 * follow the service's rule the way a client's resolver does (`watchTrafficRule`, whose update
 * the balancer turns into a new picker synchronously); the figure is write start → the new
 * version in force at each of them.
 */
async function propagationWatchBench(): Promise<void> {
  const etcd = await startEmbeddedEtcd({});
  const namespace = `bench-watch-${process.pid}`;
  const store = openTrafficStore({ service: "greeter", endpoints: etcd.endpoints, namespace });
  const to = (v: string) => ({ subsets: { [v]: { labels: { version: v } } }, routes: [{ to: [{ subset: v }] }] });
  await store.write(to("v1"));
  const watchers = Array.from({ length: 10 }, () => {
    const discovery = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    const state = { version: 0, waiting: undefined as undefined | { version: number; resolve: (at: number) => void } };
    const handle = discovery.watchTrafficRule!("greeter", (update) => {
      state.version = update.version;
      if (state.waiting && update.version >= state.waiting.version) {
        state.waiting.resolve(performance.now());
        state.waiting = undefined;
      }
    });
    return { discovery, handle, state };
  });
  const reach = (version: number) =>
    Promise.all(watchers.map(({ state }) => (state.version >= version ? performance.now() : new Promise<number>((resolve) => (state.waiting = { version, resolve })))));
  let version = (await store.current())?.version ?? 1;
  await reach(version);
  const delays: number[] = [];
  const writes: number[] = [];
  for (let change = 0; change < 200; change++) {
    const t0 = performance.now();
    const written = await store.write(to(change % 2 === 0 ? "v2" : "v1"));
    writes.push(performance.now() - t0);
    version = written.version;
    for (const at of await reach(version)) delays.push(at - t0);
  }
  console.log(`propagation (watch): 200 rule changes × 10 discoveries (each its own etcd connection), write start → new version in force`);
  console.log(`  median ${median(delays).toFixed(1)} ms  p99 ${percentile(delays, 99).toFixed(1)} ms  max ${Math.max(...delays).toFixed(1)} ms  (the write itself: median ${median(writes).toFixed(1)} ms)`);
  for (const { discovery, handle } of watchers) {
    handle.stop();
    await discovery.close();
  }
  store.close();
  await etcd.stop();
}

/** Positional scenario names, and `--name value` flags (a flag without a value, such as `--pin`, is `"true"`). */
function parseArgs(argv: string[]): { names: string[]; flags: Map<string, string> } {
  const names: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      names.push(a);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) flags.set(a.slice(2), "true");
    else flags.set(a.slice(2), argv[++i]);
  }
  return { names, flags };
}

/** Fills `defaults` from the flags named after its keys in kebab-case (`healthySeconds` ← `--healthy-seconds`); unknown flags are an error. */
function options<T extends object>(defaults: T, flags: Map<string, string>, known: Set<string>): T {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const key of Object.keys(defaults)) {
    const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    known.add(flag);
    const raw = flags.get(flag);
    if (raw === undefined) continue;
    const d = (defaults as Record<string, unknown>)[key];
    if (typeof d === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${flag} must be a positive number, got ${JSON.stringify(raw)}`);
      out[key] = n;
    } else if (typeof d === "boolean") {
      out[key] = raw !== "false";
    } else if (Array.isArray(d)) {
      out[key] = raw.split(",").filter(Boolean);
    }
  }
  return out as T;
}

async function main(): Promise<void> {
  const { names: which, flags } = parseArgs(process.argv.slice(2));
  if (which[0] === "eval-loop") return evalLoop(Number(which[1]));
  const known = new Set<string>();
  const slow = options(SLOW_DEFAULTS, flags, known);
  const freeze = options(FREEZE_DEFAULTS, flags, known);
  for (const flag of flags.keys()) if (!known.has(flag)) throw new Error(`unknown flag --${flag} (known: ${[...known].map((f) => `--${f}`).join(", ")})`);
  for (const b of [...slow.balancers, ...freeze.balancers]) {
    if (!["round_robin", "p2c", "least_request"].includes(b)) throw new Error(`--balancers: unknown balancer ${JSON.stringify(b)} (round_robin, p2c, least_request)`);
  }
  const all = which.length === 0;
  if (all || which.includes("eval")) evalBench();
  if (which.includes("eval-instructions")) evalInstructionsBench(); // opt-in: minutes under valgrind
  if (all || which.includes("pick")) await pickBench();
  if (all || which.includes("split")) splitBench();
  if (all || which.includes("propagation")) await propagationBench();
  if (all || which.includes("propagation-watch")) await propagationWatchBench();
  if (all || which.includes("slow")) await slowScenario(slow);
  if (all || which.includes("freeze")) await freezeScenario(freeze);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
