/**
 * The client-side cost of 1,000 endpoints arriving at once, without a fleet: one grpc-js server
 * in a child process listens on 0.0.0.0, and the channel's resolver (grpc-js's own `ipv4:`
 * list) yields N distinct loopback addresses of it (127.0.x.y: all of 127/8 is loopback), so
 * every child really connects. Measured in the client: the longest event-loop stall and CPU time
 * until every connection is READY, and the CPU time of the busiest stall (the most CPU the process
 * spent between two 1 ms ticks): on a loaded machine the wall-clock stall also counts time the
 * process waited for a core, the CPU figure only the work the loop did.
 *
 *   node bin/run.js bench/stall-probe.ts [consistent_hash|protomesh_round_robin|round_robin] [N]
 */
import * as grpc from "@grpc/grpc-js";
import { fork } from "node:child_process";
import type { Server } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import "../index";

async function main(): Promise<void> {
  const policy = process.argv[2] ?? "consistent_hash";
  const n = Number(process.argv[3] ?? 1000);
  if (policy === "serve") return serve();
  const server = fork(__filename, ["serve", String(n)], { execArgv: ["-r", "tsx/cjs"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve) => server.once("message", (m) => resolve(Number(m))));
  let allConnectedAt: number | undefined;
  const allConnected = new Promise<void>((resolve) =>
    server.once("message", () => {
      allConnectedAt = performance.now();
      resolve();
    }),
  );
  const addresses = Array.from({ length: n }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:${port}`);
  const lb = policy === "consistent_hash" ? { consistent_hash: {} } : { [policy]: {} };
  let t0 = performance.now();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let worst = 0;
  let worstCpu = 0;
  let last = performance.now();
  let lastCpu = cpuMs();
  const stalls: string[] = [];
  const ticker = setInterval(() => {
    const now = performance.now();
    const nowCpu = cpuMs();
    if (process.env.STALLS && now - last - 1 >= Number(process.env.STALLS)) {
      stalls.push(`  ${(last - t0).toFixed(0)} ms: ${(now - last - 1).toFixed(1)} ms, ${(nowCpu - lastCpu).toFixed(1)} ms CPU`);
    }
    worst = Math.max(worst, now - last - 1);
    worstCpu = Math.max(worstCpu, nowCpu - lastCpu);
    last = now;
    lastCpu = nowCpu;
  }, 1);
  histogram.enable();
  const cpu0 = process.cpuUsage();
  const client = new grpc.Client(`ipv4:${addresses.join(",")}`, grpc.credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [lb] }),
    "grpc.initial_reconnect_backoff_ms": 60_000,
  });
  t0 = performance.now();
  client.getChannel().getConnectivityState(true);
  process.once("exit", () => server.kill());
  const giveUpAt = performance.now() + 60_000;
  for (;;) {
    const state = client.getChannel().getConnectivityState(false);
    if (state === grpc.connectivityState.READY) break;
    if (performance.now() > giveUpAt) {
      console.error(`${policy}: no connection READY within 60 s (state ${grpc.connectivityState[state]})`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyAt = performance.now();
  // The server counts its connections and says when all N are there; then a moment for the
  // last HTTP/2 handshakes to finish on this side.
  const timedOut = await Promise.race([allConnected.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(0, giveUpAt - performance.now())).unref())]);
  if (timedOut) {
    console.error(`${policy}: not all ${n} connections up within 60 s`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 500));
  const cpu = process.cpuUsage(cpu0);
  clearInterval(ticker);
  histogram.disable();
  console.log(
    `${policy} ${n} endpoints: longest stall ${worst.toFixed(1)} ms, busiest stall ${worstCpu.toFixed(1)} ms CPU, ` +
      `CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, first READY after ${(readyAt - t0).toFixed(0)} ms, ` +
      `all ${n} connected after ${(allConnectedAt! - t0).toFixed(0)} ms`,
  );
  if (stalls.length > 0) console.log(`stalls of ${process.env.STALLS} ms or more (start, wall, CPU):\n${stalls.join("\n")}`);
  client.close();
  server.kill();
  process.exit(0);
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function serve(): void {
  const expected = Number(process.argv[3] ?? 1000);
  const server = new grpc.Server();
  server.bindAsync("0.0.0.0:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
    // grpc-js keeps its listening sockets private; counting their connections is all we ask of them.
    const listeners = [...(server as unknown as { http2Servers: Map<Server, unknown> }).http2Servers.keys()];
    const poll = setInterval(() => {
      let total = 0;
      let pending = listeners.length;
      for (const listener of listeners) {
        listener.getConnections((error, count) => {
          total += error ? 0 : count;
          if (--pending === 0 && total >= expected) {
            clearInterval(poll);
            process.send!("connected");
          }
        });
      }
    }, 20);
  });
}

void main();
