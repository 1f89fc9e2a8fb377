/**
 * What a gRPC client allocates that outlives a scavenge: V8's sampling heap profiler with objects
 * collected by mark-compacts kept and those collected by scavenges left out, over a fixed number
 * of unary calls at c=1 (100-byte requests) to a raw grpc-js echo server in a child process. At
 * c=1 a call's objects are garbage long before the next scavenge, so what this lists is kept
 * alive past its call by something else: the bytes per call and the allocation stacks (three
 * frames) they come from.
 *
 *   node bin/run.js bench/scavenge-survivors.ts [raw|protomesh] [--calls 20000] [--top 18]
 */
import { fork } from "node:child_process";
import * as inspector from "node:inspector";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "protomesh";
import { GreeterClient } from "../gen/examples/greeter/v1/greeter";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { payload, rawEchoHandlers } from "./echo-services";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params as never, (err, r) => (err ? reject(err) : resolve(r as T))));
}

function serve(): void {
  const server = new grpc.Server();
  const { service, implementation } = rawEchoHandlers();
  server.addService(service, implementation);
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { calls: { type: "string", default: "20000" }, top: { type: "string", default: "18" } } });
  const kind = positionals[0] ?? "raw";
  if (kind !== "raw" && kind !== "protomesh") throw new Error(`unknown client ${JSON.stringify(kind)}: raw or protomesh`);
  const calls = Number(values.calls);
  const top = Number(values.top);
  if (!(calls > 0) || !(top > 0)) throw new Error("--calls and --top need positive numbers");
  const server = fork(path.join(__dirname, "..", "bin", "run.js"), [__filename, "serve"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once("message", (m) => resolve(Number(m)));
      server.once("exit", (code) => reject(new Error(`echo server exited (${code})`)));
    });
    const name = payload(100);
    let one: () => Promise<unknown>;
    if (kind === "raw") {
      const client = new GreeterClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      one = () => new Promise<void>((resolve, reject) => client.sayHello({ name }, (err) => (err ? reject(err) : resolve())));
    } else {
      const client = createClient(GreeterDefinition, `127.0.0.1:${port}`);
      one = () => client.sayHello({ name });
    }
    for (let i = 0; i < 5_000; i++) await one(); // warm-up
    const session = new inspector.Session();
    session.connect();
    await post(session, "HeapProfiler.enable");
    await post(session, "HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
    for (let i = 0; i < calls; i++) await one();
    const { profile } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling");
    const bySite = new Map<string, number>();
    const walk = (node: ProfileNode, stack: string[]): void => {
      const frame = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").slice(-2).join("/")}:${node.callFrame.lineNumber + 1}`;
      const here = [...stack, frame].slice(-3);
      if (node.selfSize > 0) {
        const key = here.join(" < ");
        bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      }
      for (const child of node.children) walk(child, here);
    };
    walk(profile.head, []);
    let total = 0;
    for (const bytes of bySite.values()) total += bytes;
    console.log(`${kind} client, ${calls} calls at c=1 (Node ${process.version}): ${Math.round(total / calls).toLocaleString("en")} bytes per call outlived a scavenge`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${String(Math.round(bytes / calls)).padStart(7)} B  ${site}`);
    }
  } finally {
    server.kill();
  }
}

if (process.argv[2] === "serve") serve();
else
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      console.error(`scavenge-survivors: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
