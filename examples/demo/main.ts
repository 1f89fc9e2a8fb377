/**
 * `npm run demo`: a private etcd (unless ETCD_ENDPOINTS is set), three greeter processes that
 * register themselves, and a client that balances across them through `etcd:///greeter`; beside
 * them the rest of a fleet: a transaction coordinator (`protomesh tx-server`, embedded store),
 * the transfer example's two banks and the HTTP greeter (one more process), and the HTTP gateway
 * in front of the greeters. A few transfers run at start; with --keep, the admin console shows it all.
 * Flags: --keep (leave everything running until Ctrl-C), --calls N (calls per round, default 300).
 */
import type { ChildProcess } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { createClient, createJsonLogger, setLogger, startEmbeddedEtcd, type BalancerOption } from "protomesh";
import { GreeterDefinition } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { startChild, stopAllChildren, stopChild } from "./child-process";
import { runTransfers } from "./transfers";

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
/** Every other process and in-process server the demo started, stopped on the way out. */
const others: ChildProcess[] = [];
const closers: Array<() => Promise<void>> = [];

function say(line = ""): void {
  process.stdout.write(line + "\n");
}

function heading(text: string): void {
  say();
  say(`── ${text} ${"─".repeat(Math.max(0, 72 - text.length))}`);
}

const childEnv = (endpoints: string): NodeJS.ProcessEnv => ({ ...process.env, ETCD_ENDPOINTS: endpoints, PROTOMESH_LOG_LEVEL: LOG_LEVEL });

/** Starts one greeter process and resolves once it is serving and registered. */
async function startInstance(etcdEndpoints: string): Promise<Instance> {
  const name = `greeter-${nextIndex++}`;
  const child = await startChild(name, [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "examples", "greeter", "server.ts"), "--port", "0"], /listening on (\S+)/, childEnv(etcdEndpoints));
  const inst: Instance = { name, address: child.ready[1]!, pid: child.proc.pid!, proc: child.proc };
  instances.push(inst);
  return inst;
}

/** Stops one greeter (SIGTERM: it deregisters and drains) and resolves once it has exited. */
function stopInstance(inst: Instance): Promise<void> {
  const at = instances.indexOf(inst);
  if (at >= 0) instances.splice(at, 1);
  return stopChild(inst.proc);
}

/** The coordinator (`protomesh tx-server`, in-memory embedded store) registered as protomesh-tx; its address. */
async function startCoordinator(endpoints: string): Promise<string> {
  const args = [path.join(ROOT, "bin", "protomesh.js"), "tx-server", "--listen", "127.0.0.1:0", "--endpoints", endpoints, "--poll-ms", "500"];
  const child = await startChild("tx-server", args, /serving on (\S+)/, childEnv(endpoints));
  others.push(child.proc);
  return child.ready[1]!;
}

/** The HTTP greeter and the two banks (examples/demo/fleet.ts); their addresses by name. */
async function startFleet(endpoints: string): Promise<Record<string, string>> {
  const child = await startChild("fleet", [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "examples", "demo", "fleet.ts")], /^fleet ready (.*)$/, childEnv(endpoints));
  others.push(child.proc);
  return Object.fromEntries(child.ready[1]!.split(" ").map((kv) => kv.split("=") as [string, string]));
}

/** The HTTP gateway, in this process, routing every registered service (unannotated methods too); its URL. */
async function startDemoGateway(endpoints: string): Promise<string> {
  const { createGateway } = require("../../gateway") as typeof import("../../gateway");
  const gateway = await createGateway({ etcd: { endpoints: endpoints.split(",") }, discover: true, unannotated: true, accessLog: false });
  closers.push(() => gateway.close());
  const port = await gateway.listen(await freeOr(8080), "127.0.0.1");
  return `http://127.0.0.1:${port}`;
}

/** `port` when nothing listens on it, else 0 (any free port). */
function freeOr(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(0));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(port)));
  });
}

/** One HTTP call through the gateway, as a line: request, status, body. */
async function viaGateway(base: string, method: string, route: string, body?: unknown): Promise<string> {
  try {
    const res = await fetch(base + route, { method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(5000) });
    return `${method} ${route} → ${res.status} ${(await res.text()).trim().slice(0, 90)}`;
  } catch (err) {
    return `${method} ${route} → ${err instanceof Error ? err.message : String(err)}`;
  }
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
  let etcdStarting: ReturnType<typeof startEmbeddedEtcd> | undefined;
  // Set before anything starts: a stop that comes during start-up reaches every process begun so far.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
      // A copy: stopInstance removes each instance from the list while the stops run.
      await Promise.all([...[...instances].map((i) => stopInstance(i)), ...others.map((p) => stopChild(p))]);
      // Children still starting (not yet in either list).
      await stopAllChildren();
      const etcd = await etcdStarting?.catch(() => undefined);
      await etcd?.stop();
    })());
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  process.once("SIGTERM", () => void cleanup().then(() => process.exit(143)));

  let endpoints: string = process.env.ETCD_ENDPOINTS ?? "";
  if (!endpoints) {
    heading("starting a private etcd (set ETCD_ENDPOINTS to use your own)");
    etcdStarting = startEmbeddedEtcd({});
    const etcd = await etcdStarting;
    endpoints = etcd.endpoints.join(",");
    process.env.ETCD_ENDPOINTS = endpoints;
    say(`  etcd at ${endpoints}`);
  } else {
    heading(`using etcd at ${endpoints}`);
  }

  try {
    heading("starting the fleet: three greeters, a transaction coordinator, two banks, an HTTP greeter");
    const started = Date.now();
    // All at once; every start settles before a failure is reported, so cleanup finds every process.
    const settled = await Promise.allSettled([startInstance(endpoints), startInstance(endpoints), startInstance(endpoints), startCoordinator(endpoints), startFleet(endpoints)]);
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failed) throw failed.reason;
    const coordinator = (settled[3] as PromiseFulfilledResult<string>).value;
    const fleet = (settled[4] as PromiseFulfilledResult<Record<string, string>>).value;
    // After the services: the gateway learns their routes through reflection as it starts.
    const gateway = await startDemoGateway(endpoints);
    for (const i of instances.sort((a, b) => a.name.localeCompare(b.name))) say(`  ${i.name.padEnd(13)} ${i.address}  pid ${i.pid}`);
    say(`  ${"protomesh-tx".padEnd(13)} ${coordinator}  (protomesh tx-server, embedded store)`);
    for (const [name, address] of Object.entries(fleet)) say(`  ${name.padEnd(13)} ${address}`);
    say(`  ${"gateway".padEnd(13)} ${gateway}  (HTTP/JSON, routes from the registry)`);
    say(`  (all up in ${((Date.now() - started) / 1000).toFixed(1)} s)`);

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

    heading("HTTP through the gateway");
    say(`  ${await viaGateway(gateway, "GET", "/v1/hello/demo")}`);
    say(`  ${await viaGateway(gateway, "POST", "/examples.greeter.v1.Greeter/SayHello", { name: "demo" })}`);

    heading("transactions through the coordinator (bank-a holds alice, bank-b holds bob)");
    const transfers = await runTransfers();
    for (const t of transfers.rows) say(`  ${t.what.padEnd(50)} ${t.status}`);
    say(`  balances now: ${transfers.balances}`);

    heading("explore the running services");
    for (const i of instances) say(`  ${i.name} at ${i.address}`);
    say(`  ETCD_ENDPOINTS=${endpoints} node bin/protomesh.js ls etcd:///greeter`);
    say(`  ETCD_ENDPOINTS=${endpoints} node bin/protomesh.js call etcd:///greeter examples.greeter.v1.Greeter/SayHello -d '{"name":"you"}'`);
    say(`  grpcurl -plaintext ${instances[0]!.address} list`);
    say(`  curl ${gateway}/v1/hello/you`);
    say(`  ETCD_ENDPOINTS=${endpoints} node bin/protomesh.js tx list            # or --stuck 1m: unfinished and begun over a minute ago`);
    say(`  gateway:     ${gateway}`);
    say(`  coordinator: ${coordinator} (etcd:///protomesh-tx)`);
    if (keep) {
      const url = await startDemoConsole(endpoints, gateway);
      say(`  admin console: ${url}  (services, config, API with try-it over gRPC and HTTP, traffic rules and gateway policies, transactions, traces, audit log)`);
      say();
      say("  --keep: everything stays up; press Ctrl-C to stop.");
      await new Promise(() => undefined);
    } else {
      say("  (run `npm run demo -- --keep` to leave them running)");
    }
  } finally {
    // Reached when the demo ends, or when something failed (also under --keep).
    await cleanup();
  }
}

/** The admin console on the demo's etcd and gateway: port 8090, or any free port when that one is taken. */
async function startDemoConsole(endpoints: string, gateway: string): Promise<string> {
  const { startConsole } = require("../../console") as typeof import("../../console");
  const options = { endpoints: endpoints.split(","), gateway };
  const running = await startConsole({ ...options, port: 8090 }).catch((err: NodeJS.ErrnoException) =>
    err.code === "EADDRINUSE" ? startConsole({ ...options, port: 0 }) : Promise.reject(err),
  );
  closers.push(() => running.close());
  return running.url;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
