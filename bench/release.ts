/**
 * Release figures (not timed tests), with load through real `etcd:///greeter` clients (each its
 * own etcd connection, resolver and balancer) against greeters v1 and v2 in this process:
 *
 *   node bin/run.js bench/release.ts [--trials 7] [--clients 5] [--concurrency 4]
 *
 * - abort: a canary held at 50 %; `protomesh release abort` (in-process, so the command's own etcd
 *   connection is part of the figure) → the last call each client started towards the canary.
 *   Per trial: the slowest client, from the command and from the rule's write; median over trials.
 * - blue-green: `promote` (every call to green) then `undo` (every call back to blue) under the
 *   same load; failed calls per trial, and when the slowest client had switched.
 */
import { parseArgs } from "node:util";
import { startEmbeddedEtcd } from "../registry/etcd/embedded";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { ReleaseController } from "../release/controller/controller";
import { ReleaseStateStore } from "../release/controller/state-store";
import type { ReleaseState } from "../release/state";
import { openTrafficStore } from "../traffic/store";
import { release, startFleet } from "../test/helpers/release-fixture";
import { ReleaseLoad } from "../test/helpers/release-load";
import { createJsonLogger } from "../runtime/logger";
import { median } from "./stats";

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { trials: { type: "string", default: "7" }, clients: { type: "string", default: "5" }, concurrency: { type: "string", default: "4" } } });
  const trials = Number(values.trials);
  const clients = Number(values.clients);
  const concurrency = Number(values.concurrency);
  const etcd = await startEmbeddedEtcd({});
  const endpoints = etcd.endpoints;
  const namespace = `bench-release-${process.pid}`;
  const fleet = await startFleet(endpoints, namespace, [{ version: "v1" }, { version: "v1" }, { version: "v2" }, { version: "v2" }]);
  const etcdClient = createEtcdClient(resolveEtcdOptions({ endpoints, namespace }));
  const store = new ReleaseStateStore(etcdClient, namespace);
  const rules = openTrafficStore({ client: etcdClient, namespace, service: "greeter" });
  const controller = new ReleaseController({ client: etcdClient, namespace, tickMs: 200, logger: createJsonLogger({ level: "silent" }) });
  await controller.start();
  const load = ReleaseLoad.start({ endpoints, namespace, versions: fleet.versions, clients, concurrency });
  const state = (check: (s: ReleaseState) => boolean) => until("release state", async () => {
    const s = (await store.get("greeter"))?.state;
    return s && check(s) ? s : undefined;
  });
  const ruleAt = async () => Date.parse((await rules.current())!.at);
  const cli = async (...args: string[]) => {
    const r = await release(endpoints, namespace, ...args);
    if (r.code !== 0) throw new Error(`release ${args.join(" ")}: ${r.err}`);
  };
  await load.settled(Date.now(), (c) => c.ok, { streak: 20 });
  console.log(`release bench: ${clients} etcd:/// clients × ${concurrency} in flight, 2 × v1 + 2 × v2 greeters, ${trials} trials each`);

  const fromCommand: number[] = [];
  const fromWrite: number[] = [];
  for (let t = 0; t < trials; t++) {
    await cli("start", "greeter", "--canary", "version=v2", "--stable", "version=v1", "--steps", "50,100", "--pause", "forever", "--analysis", "none");
    await state((s) => s.phase === "Paused" && s.weight === 50);
    const weighted = await ruleAt();
    await until("canary calls from every client", async () => (Array.from({ length: clients }, (_, n) => n).every((n) => load.of(n).some((c) => c.startedAt > weighted && c.version === "v2")) ? true : undefined));
    const abortAt = Date.now();
    await cli("abort", "greeter");
    const written = await ruleAt();
    const last = await load.settled(abortAt, (c) => c.version === "v1");
    fromCommand.push(Math.max(...last.map((x) => Math.max(0, x - abortAt))));
    fromWrite.push(Math.max(...last.map((x) => Math.max(0, x - written))));
    console.log(`  abort trial ${t + 1}: slowest client on 0 % canary ${fromCommand.at(-1)} ms after the command, ${fromWrite.at(-1)} ms after the rule write`);
  }

  const failed: number[] = [];
  const calls: number[] = [];
  const switchMs: number[] = [];
  const undoMs: number[] = [];
  for (let t = 0; t < trials; t++) {
    await cli("start", "greeter", "--blue-green", "version=v2", "--stable", "version=v1", "--analysis", "none");
    await state((s) => s.phase === "Paused");
    await load.settled(Date.now(), (c) => c.version === "v1", { streak: 20 });
    const from = load.calls.length;
    const promoteAt = Date.now();
    await cli("promote", "greeter");
    switchMs.push(Math.max(...(await load.settled(promoteAt, (c) => c.version === "v2")).map((x) => Math.max(0, x - promoteAt))));
    const undoAt = Date.now();
    await cli("undo", "greeter");
    undoMs.push(Math.max(...(await load.settled(undoAt, (c) => c.version === "v1")).map((x) => Math.max(0, x - undoAt))));
    const window = load.calls.slice(from);
    calls.push(window.length);
    failed.push(window.filter((c) => !c.ok).length);
    console.log(`  blue-green trial ${t + 1}: ${window.length} calls, ${failed.at(-1)} failed; every client on green ${switchMs.at(-1)} ms after promote, on blue ${undoMs.at(-1)} ms after undo`);
  }

  console.log(`abort → 0 % canary at every client: median ${median(fromCommand)} ms from the command (max ${Math.max(...fromCommand)}), median ${median(fromWrite)} ms from the rule write (max ${Math.max(...fromWrite)})`);
  console.log(`blue-green switch + rollback under load: ${failed.reduce((a, b) => a + b, 0)} failed of ${calls.reduce((a, b) => a + b, 0)} calls; promote → every client on green median ${median(switchMs)} ms, undo → every client on blue median ${median(undoMs)} ms`);
  await load.stop();
  await controller.stop();
  rules.close();
  etcdClient.close();
  await fleet.close();
  await etcd.stop();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
