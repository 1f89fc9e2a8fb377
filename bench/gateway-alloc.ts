/**
 * Bytes the gateway's front process allocates per request, next to the hand-written `node:http`
 * handler's, and the functions that allocate the difference.
 *
 *   node bin/run.js bench/gateway-alloc.ts [--requests 5000] [--warm 3000] [--top 25] [--compiled]
 *
 * The greeter runs in its own process (`gateway-upstream.ts`); the gateway and the hand-written
 * server run in this one, driven by a keep-alive `node:http` client at c=1 (POST /v1/hello,
 * `{"name":"bench"}`) from this process too, so the driver's own allocations are in both fronts'
 * figures alike. V8's sampling heap profiler keeps objects collected by scavenges and
 * mark-compacts, so it counts everything allocated, not what survives. Allocation does not move
 * with the machine's load, unlike time.
 */
import * as http from "node:http";
import * as inspector from "node:inspector";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { createGateway } from "../gateway";
import { handWrittenServer } from "./gateway-hand";
import { BenchWorker, runCompiled, runningCompiled, stopAllWorkers } from "./workers";
import { post, type ProfileNode } from "./heap-sampling";

const { values: flags } = parseArgs({
  options: {
    requests: { type: "string", default: "5000" },
    warm: { type: "string", default: "3000" },
    top: { type: "string", default: "25" },
    compiled: { type: "boolean", default: false },
  },
});
const REQUESTS = positive("--requests", flags.requests);
const WARM = positive("--warm", flags.warm);
const TOP = positive("--top", flags.top);

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0) || !Number.isInteger(n)) throw new Error(`${name} needs a positive whole number, got ${JSON.stringify(text)}`);
  return n;
}

/** `count` sequential requests to `port`; throws on anything but 200. */
async function drive(port: number, urlPath: string, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, path: urlPath, method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${urlPath}: HTTP ${res.statusCode}`))));
        });
        req.on("error", reject);
        req.end('{"name":"bench"}');
      });
    }
  } finally {
    agent.destroy();
  }
}

/** Bytes per request and by allocating function (per request) while `count` requests run. */
async function profile(session: inspector.Session, port: number, urlPath: string, count: number): Promise<{ perRequest: number; byFunction: Map<string, number> }> {
  await post(session, "HeapProfiler.startSampling", { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await drive(port, urlPath, count);
  const { profile: p } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling");
  let bytes = 0;
  const byFunction = new Map<string, number>();
  const walk = (n: ProfileNode) => {
    bytes += n.selfSize;
    if (n.selfSize > 0) {
      const where = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^file:\/\//, "").split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
      byFunction.set(where, (byFunction.get(where) ?? 0) + n.selfSize / count);
    }
    for (const c of n.children) walk(c);
  };
  walk(p.head);
  return { perRequest: bytes / count, byFunction };
}

async function main(): Promise<void> {
  if (flags.compiled && !runningCompiled()) {
    const code = await runCompiled(__filename, process.argv.slice(2));
    if (code !== 0) throw new Error(`the compiled run exited with code ${code}`);
    return;
  }
  const upstream = await BenchWorker.start("greeter", "gateway-upstream.ts", { compiled: runningCompiled() });
  const address = `127.0.0.1:${await upstream.call<number>("listen")}`;
  const gw = await createGateway({ upstreams: [{ target: address, definitions: [HttpGreeterDefinition] }], accessLog: false });
  const gwPort = await gw.listen(0);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const hand = handWrittenServer(client);
  await new Promise<void>((r) => hand.listen(0, "127.0.0.1", r));
  const handPort = (hand.address() as { port: number }).port;
  const session = new inspector.Session();
  session.connect();
  await post(session, "HeapProfiler.enable");
  try {
    await drive(gwPort, "/v1/hello", WARM);
    await drive(handPort, "/", WARM);
    const gateway = await profile(session, gwPort, "/v1/hello", REQUESTS);
    const handWritten = await profile(session, handPort, "/", REQUESTS);
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
    process.stdout.write(
      `Allocated per request, ${REQUESTS} requests at c=1 after ${WARM} to warm up, Node ${process.version}${runningCompiled() ? " (compiled)" : " (through tsx)"}:\n` +
        `  gateway ${kb(gateway.perRequest)}, hand-written ${kb(handWritten.perRequest)} (${(gateway.perRequest / handWritten.perRequest).toFixed(2)}×; driver and upstream client included in both)\n\n` +
        `Functions allocating more per request behind the gateway (bytes; sampled every 64 B on average):\n`,
    );
    const keys = new Set([...gateway.byFunction.keys(), ...handWritten.byFunction.keys()]);
    const diff = [...keys].map((k) => [k, (gateway.byFunction.get(k) ?? 0) - (handWritten.byFunction.get(k) ?? 0)] as const).sort((a, b) => b[1] - a[1]);
    for (const [where, bytes] of diff.slice(0, TOP)) process.stdout.write(`  ${bytes.toFixed(0).padStart(7)}  ${where}\n`);
    process.stdout.write(`\n... and less:\n`);
    for (const [where, bytes] of diff.slice(-5).reverse()) process.stdout.write(`  ${bytes.toFixed(0).padStart(7)}  ${where}\n`);
  } finally {
    session.disconnect();
    await gw.close();
    hand.close();
    client.close();
    await stopAllWorkers();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[gateway alloc bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void stopAllWorkers().finally(() => process.exit(1));
  },
);
