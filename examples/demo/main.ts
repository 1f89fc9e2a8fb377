/**
 * `npm run demo`: a private etcd (unless ETCD_ENDPOINTS is set), three greeter processes that
 * register themselves, and a client that balances across them through `etcd:///greeter`.
 * Flags: --keep (leave everything running until Ctrl-C), --calls N (calls per round, default 300).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { createClient, createJsonLogger, setLogger, startEmbeddedEtcd, type BalancerOption } from "protomesh";
import { GreeterDefinition } from "../../gen/examples/greeter/v1/greeter_protomesh";

const ROOT = path.join(__dirname, "..", "..");
// The demo's output is its tables: log lines (its own and its greeters') only when asked for.
const LOG_LEVEL = process.env.PROTOMESH_LOG_LEVEL || "error";
if (!process.env.PROTOMESH_LOG_LEVEL) setLogger(createJsonLogger({ level: "error" }));
const keep = process.argv.includes("--keep");
const callsArg = process.argv.indexOf("--calls");
const CALLS = callsArg > 0 ? Math.max(10, Number(process.argv[callsArg + 1]) || 300) : 300;

interface Instance {
  name: string;
  address: string;
  pid: number;
  proc: ChildProcess;
}

const instances: Instance[] = [];
let nextIndex = 1;

function say(line = ""): void {
  process.stdout.write(line + "\n");
}

function heading(text: string): void {
  say();
  say(`── ${text} ${"─".repeat(Math.max(0, 72 - text.length))}`);
}

/** Starts one greeter process and resolves once it is serving and registered. */
function startInstance(etcdEndpoints: string): Promise<Instance> {
  const name = `greeter-${nextIndex++}`;
  const proc = spawn(process.execPath, [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "examples", "greeter", "server.ts"), "--port", "0"], {
    env: { ...process.env, ETCD_ENDPOINTS: etcdEndpoints, PROTOMESH_LOG_LEVEL: LOG_LEVEL },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL"); // not in `instances` yet, so cleanup would not find it
      reject(new Error(`${name} did not start within 60 s`));
    }, 60_000);
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on("line", (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const inst: Instance = { name, address: m[1]!, pid: proc.pid!, proc };
      instances.push(inst);
      resolve(inst);
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code}`));
    });
  });
}

/** Stops one greeter (SIGTERM: it deregisters and drains) and resolves once it has exited. */
function stopInstance(inst: Instance): Promise<void> {
  const at = instances.indexOf(inst);
  if (at >= 0) instances.splice(at, 1);
  return new Promise((resolve) => {
    if (inst.proc.exitCode !== null || inst.proc.signalCode !== null) return resolve();
    inst.proc.once("exit", () => resolve());
    inst.proc.kill("SIGTERM");
  });
}

function nameOf(servedBy: string): string {
  const pid = Number(servedBy.split("@")[1]);
  return instances.find((i) => i.pid === pid)?.name ?? servedBy;
}

/** Makes `calls` unary calls and counts replies per instance (and per key when keys are given). */
async function round(balancer: BalancerOption, calls: number, keyOf?: (i: number) => string) {
  const client = createClient(GreeterDefinition, "etcd:///greeter", { balancer, defaultDeadlineMs: 3000 });
  const perInstance = new Map<string, number>();
  const perKey = new Map<string, Set<string>>();
  let failed = 0;
  try {
    for (let i = 0; i < calls; i += 20) {
      const batch = Array.from({ length: Math.min(20, calls - i) }, (_, j) => {
        const key = keyOf?.(i + j);
        return client.sayHello({ name: key ?? "demo" }, key ? { hashKey: key } : {}).then(
          (r) => {
            const who = nameOf(r.servedBy);
            perInstance.set(who, (perInstance.get(who) ?? 0) + 1);
            if (key) perKey.set(key, (perKey.get(key) ?? new Set()).add(who));
          },
          () => void failed++,
        );
      });
      await Promise.all(batch);
    }
  } finally {
    client.$close();
  }
  return { perInstance, perKey, failed };
}

function table(perInstance: Map<string, number>, failed: number, calls: number): void {
  const names = [...new Set([...instances.map((i) => i.name), ...perInstance.keys()])].sort();
  say(`  ${"instance".padEnd(12)} ${"address".padEnd(22)} ${"calls".padStart(6)}  share`);
  for (const n of names) {
    const count = perInstance.get(n) ?? 0;
    const addr = instances.find((i) => i.name === n)?.address ?? "(stopped)";
    const bar = "█".repeat(Math.round((count / calls) * 40));
    say(`  ${n.padEnd(12)} ${addr.padEnd(22)} ${String(count).padStart(6)}  ${bar}`);
  }
  say(`  failed calls: ${failed}`);
}

async function main(): Promise<void> {
  let stopEtcd: (() => Promise<void>) | undefined;
  let endpoints: string = process.env.ETCD_ENDPOINTS ?? "";
  if (!endpoints) {
    heading("starting a private etcd (set ETCD_ENDPOINTS to use your own)");
    const etcd = await startEmbeddedEtcd({});
    endpoints = etcd.endpoints.join(",");
    stopEtcd = () => etcd.stop();
    process.env.ETCD_ENDPOINTS = endpoints;
    say(`  etcd at ${endpoints}`);
  } else {
    heading(`using etcd at ${endpoints}`);
  }

  // A copy: stopInstance removes each instance from the list while the stops run.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all([...instances].map((i) => stopInstance(i)));
      await stopEtcd?.();
    })());
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  process.once("SIGTERM", () => void cleanup().then(() => process.exit(143)));

  try {
    heading("starting three greeter instances (each registers itself under a lease)");
    await Promise.all([startInstance(endpoints), startInstance(endpoints), startInstance(endpoints)]);
    for (const i of instances.sort((a, b) => a.name.localeCompare(b.name))) say(`  ${i.name}  ${i.address}  pid ${i.pid}`);

    heading(`round_robin: ${CALLS} calls through etcd:///greeter`);
    let r = await round("round_robin", CALLS);
    table(r.perInstance, r.failed, CALLS);

    heading(`pick_first: ${CALLS} calls (one instance takes everything)`);
    r = await round("pick_first", CALLS);
    table(r.perInstance, r.failed, CALLS);

    heading(`consistent_hash on x-user: ${CALLS} calls, 6 users`);
    const users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    r = await round({ consistentHash: { header: "x-user" } }, CALLS, (i) => users[i % users.length]!);
    table(r.perInstance, r.failed, CALLS);
    for (const u of users) say(`  ${u.padEnd(6)} → ${[...(r.perKey.get(u) ?? [])].join(", ")}  (${CALLS / users.length} calls, one instance each)`);

    const victim = instances[0]!;
    heading(`stopping ${victim.name} gracefully (lease revoked, in-flight calls drained)`);
    await stopInstance(victim);
    r = await round("round_robin", CALLS);
    table(r.perInstance, r.failed, CALLS);

    heading("a new instance joins");
    const joined = await startInstance(endpoints);
    say(`  ${joined.name}  ${joined.address}  pid ${joined.pid}`);
    r = await round("round_robin", CALLS);
    table(r.perInstance, r.failed, CALLS);

    heading("explore the running services");
    for (const i of instances) say(`  ${i.name} at ${i.address}`);
    say(`  ETCD_ENDPOINTS=${endpoints} node bin/protomesh.js ls etcd:///greeter`);
    say(`  ETCD_ENDPOINTS=${endpoints} node bin/protomesh.js call etcd:///greeter examples.greeter.v1.Greeter/SayHello -d '{"name":"you"}'`);
    say(`  grpcurl -plaintext ${instances[0]!.address} list`);
    if (keep) {
      const url = await startDemoConsole(endpoints);
      say(`  admin console: ${url}  (services, config, API with try-it, traffic rules and gateway policies, transactions, traces, audit log)`);
      say();
      say("  --keep: everything stays up; press Ctrl-C to stop.");
      await new Promise(() => undefined);
    } else {
      say("  (run `npm run demo -- --keep` to leave them running)");
    }
  } finally {
    if (!keep) await cleanup();
  }
}

/** The admin console on the demo's etcd: port 8090, or any free port when that one is taken. */
async function startDemoConsole(endpoints: string): Promise<string> {
  const { startConsole } = require("../../console") as typeof import("../../console");
  const options = { endpoints: endpoints.split(",") };
  const running = await startConsole({ ...options, port: 8090 }).catch((err: NodeJS.ErrnoException) =>
    err.code === "EADDRINUSE" ? startConsole({ ...options, port: 0 }) : Promise.reject(err),
  );
  return running.url;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
