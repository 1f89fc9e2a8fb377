/**
 * `node bin/run.js bench/gateway.ts [--seconds N] [--out FILE] [--compiled]`: the HTTP/JSON gateway
 * measured. `--compiled` runs it from an esbuild bundle with plain `node` (a deployment's compiled
 * JavaScript) instead of through tsx.
 *
 * 1. Throughput and latency with wrk (its own process), POST /v1/hello with a JSON body:
 *    the gateway vs a hand-written node:http handler (JSON.parse + the same grpc-js client),
 *    vs the same handler also forwarding a request id and x-forwarded-* as the gateway does,
 *    vs direct gRPC (a grpc-js client loop), at c=1 and c=100. The HTTP servers and the
 *    greeter share this process (one event loop each pays for the same upstream), wrk gets
 *    the other core; ratios come from one run.
 * 2. A gateway routing `etcd:///http-greeter` (two greeters registered as version v1 and v2 in
 *    an embedded etcd) with JWT auth, a local rate limit and a canary traffic rule on (90 % of
 *    requests to v1, 10 % to v2, `x-canary: yes` always to v2), against the same gateway with no
 *    policy: µs per request added, and the share the canary really got.
 * 3. Cluster rate limit accuracy: measured by `bench/gateway-cluster-limit.ts`, where every
 *    gateway and every load generator has a process of its own (this run only points there).
 * 4. Policy change written to etcd → applied by each of 3 gateways (p50, p99 over trials).
 * 5. Transcoding cost per payload size (JSON → proto → JSON), µs per byte.
 */
import { execFile, spawn } from "node:child_process";
import { parseArgs, promisify } from "node:util";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { SignJWT } from "jose";
import { createServer } from "protomesh";
import { etcdRegistry, startEmbeddedEtcd } from "protomesh/registry";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { createGateway, filesFromDescriptors, PolicyStore, type Gateway } from "../gateway";
import { handWrittenServer } from "./gateway-hand";
import { runCompiled, runningCompiled } from "./workers";

const args = process.argv.slice(2);
const { values: flags } = parseArgs({ args, options: { seconds: { type: "string", default: "8" }, out: { type: "string" }, compiled: { type: "boolean", default: false } } });
const SECONDS = Number(flags.seconds);
if (!(SECONDS > 0)) throw new Error(`--seconds needs a positive number, got ${JSON.stringify(flags.seconds)}`);
const SECRET = "bench-secret-bench-secret-bench";

function log(line: string): void {
  process.stderr.write(`[gateway bench] ${line}\n`);
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Runs wrk against `url` (POST with a JSON body) and parses its latency distribution. */
async function wrk(url: string, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<WrkResult> {
  const script = path.join(os.tmpdir(), `gw-bench-${process.pid}.lua`);
  const hdr = Object.entries({ "Content-Type": "application/json", ...headers }).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`).join("\n");
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"name":"bench"}'\n${hdr}\n`);
  // Asynchronous: the servers under test share this process's event loop.
  const { stdout: out } = await promisify(execFile)("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, url], { encoding: "utf8" });
  const ms = (m: RegExpMatchArray | null) => {
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: ms(out.match(/50%\s+([\d.]+)(us|ms|s)/)),
    p99: ms(out.match(/99%\s+([\d.]+)(us|ms|s)/)),
    errors: non2xx + (socketErr ? socketErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

/** Direct gRPC: `concurrency` loops calling the greeter for `seconds`, in a child process so it gets its own core. */
async function direct(address: string, concurrency: number, seconds: number): Promise<WrkResult> {
  const code = `
    const grpc = require("@grpc/grpc-js");
    const c = new grpc.Client(${JSON.stringify(address)}, grpc.credentials.createInsecure());
    const req = Buffer.from([0x0a, 0x05, 0x62, 0x65, 0x6e, 0x63, 0x68]);
    const lat = []; let errors = 0; let end = 0;
    const one = () => new Promise((r) => { const t = process.hrtime.bigint(); c.makeUnaryRequest(${JSON.stringify(HttpGreeterDefinition.methods.sayHello.path)}, (b) => b, (b) => b, req, new grpc.Metadata(), {}, (e) => { if (e) errors++; else lat.push(Number(process.hrtime.bigint() - t) / 1e6); r(); }); });
    const loop = async () => { while (Date.now() < end) await one(); };
    (async () => { for (let i = 0; i < 200; i++) await one(); lat.length = 0; const t0 = Date.now(); end = t0 + ${seconds * 1000}; await Promise.all(Array.from({ length: ${concurrency} }, loop)); const s = (Date.now() - t0) / 1000; lat.sort((a, b) => a - b); process.stdout.write(JSON.stringify({ rps: lat.length / s, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)], errors })); c.close(); })();
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", code], { cwd: path.join(__dirname, ".."), stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (c) => (c === 0 ? resolve(JSON.parse(out) as WrkResult) : reject(new Error(`direct client exited ${c}`))));
  });
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

function fmt(r: WrkResult): string {
  return `${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms${r.errors ? `, ${r.errors} errors` : ""}`;
}

async function main(): Promise<void> {
  if (flags.compiled && !runningCompiled()) {
    const code = await runCompiled(__filename, args);
    if (code !== 0) throw new Error(`the compiled run exited with code ${code}`);
    return;
  }
  const lines: string[] = [];
  const out = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  out(`Gateway benchmark, ${new Date().toISOString()}, Node ${process.version}${runningCompiled() ? " (compiled: esbuild bundle, plain node)" : " (through tsx)"}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (a busy shared machine), ${SECONDS} s per wrk run.`);
  const server = createServer({});
  server.add(HttpGreeterDefinition, httpGreeterHandlers("bench"));
  const port = await server.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const upstream = { target: address, definitions: [HttpGreeterDefinition] };
  const gw = await createGateway({ upstreams: [upstream], accessLog: false });
  const gwPort = await gw.listen(0);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const hand = handWrittenServer(client);
  await new Promise<void>((r) => hand.listen(0, "127.0.0.1", r));
  const handPort = (hand.address() as { port: number }).port;
  // The same handler also forwarding a request id and x-forwarded-* as the gateway does.
  const forwarding = handWrittenServer(client, { forward: true });
  await new Promise<void>((r) => forwarding.listen(0, "127.0.0.1", r));
  const fwdPort = (forwarding.address() as { port: number }).port;

  // 1. Gateway vs hand-written vs direct gRPC.
  out("\n### 1. Gateway vs hand-written node:http handler vs direct gRPC (POST /v1/hello, 16-byte JSON body)\n");
  out("`hand + fwd` is the hand-written handler also forwarding a request id and `x-forwarded-for/-host/-proto` as metadata, as the gateway does.\n");
  out("| c | gateway | hand-written | hand + fwd | direct gRPC | gateway/hand req/s | gateway/hand p99 | gateway/(hand + fwd) req/s | gateway/(hand + fwd) p99 |");
  out("|---|---|---|---|---|---|---|---|---|");
  for (const c of [1, 100]) {
    await wrk(`http://127.0.0.1:${gwPort}/v1/hello`, c, 2);
    await wrk(`http://127.0.0.1:${handPort}/`, c, 2);
    await wrk(`http://127.0.0.1:${fwdPort}/`, c, 2);
    const g = await wrk(`http://127.0.0.1:${gwPort}/v1/hello`, c, SECONDS);
    const h = await wrk(`http://127.0.0.1:${handPort}/`, c, SECONDS);
    const f = await wrk(`http://127.0.0.1:${fwdPort}/`, c, SECONDS);
    const d = await direct(address, c, SECONDS);
    out(`| ${c} | ${fmt(g)} | ${fmt(h)} | ${fmt(f)} | ${fmt(d)} | ${(g.rps / h.rps).toFixed(2)}× | ${(g.p99 / h.p99).toFixed(2)}× | ${(g.rps / f.rps).toFixed(2)}× | ${(g.p99 / f.p99).toFixed(2)}× |`);
  }

  // Sections 2 and 4 need etcd: a registry for the canary rule's subsets, the policy store.
  const etcd = await startEmbeddedEtcd();
  const namespace = `bench-${process.pid}`;
  const mesh = etcdRegistry({ endpoints: etcd.endpoints, namespace });
  const gateways: Gateway[] = [];
  const greeters: ReturnType<typeof createServer>[] = [];
  try {
    // 2. JWT + local rate limit + canary rule overhead, on a gateway whose upstream is the registry.
    out("\n### 2. JWT (HS256) + local rate limit + canary traffic rule on the route (c=1)\n");
    for (const version of ["v1", "v2"]) {
      const g = createServer({ name: "http-greeter", registry: mesh, instance: { version } });
      g.add(HttpGreeterDefinition, httpGreeterHandlers(`greeter-${version}`));
      await g.listen("127.0.0.1:0");
      greeters.push(g);
    }
    const canaryGw = await createGateway({ upstreams: [{ target: "etcd:///http-greeter", definitions: [HttpGreeterDefinition] }], accessLog: false, etcd: { endpoints: etcd.endpoints, namespace }, name: "canary", env: "bench" });
    gateways.push(canaryGw);
    const canaryUrl = `http://127.0.0.1:${await canaryGw.listen(0)}/v1/hello`;
    const token = await new SignJWT({ scope: "greet" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
    await wrk(canaryUrl, 1, 2);
    const plain = await wrk(canaryUrl, 1, SECONDS);
    canaryGw.setPolicy({
      defaults: { auth: "jwt", scopes: ["greet"], rateLimit: { key: "claim:sub", local: { ratePerSecond: 1e6, burst: 1e6 } } },
      jwt: { secret: SECRET },
      traffic: {
        "http-greeter": {
          subsets: { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } },
          routes: [
            { name: "testers", match: { headers: { "x-canary": "yes" } }, to: [{ subset: "canary" }] },
            { name: "split", to: [{ subset: "stable", weight: 90 }, { subset: "canary", weight: 10 }] },
          ],
        },
      },
    });
    const auth = { Authorization: `Bearer ${token}` };
    const ask = (headers: Record<string, string>) => fetch(canaryUrl, { method: "POST", headers: { "content-type": "application/json", ...auth, ...headers }, body: '{"name":"bench"}' });
    // The rule decides once the registry watch has listed both versions.
    for (let waited = 0; (await ask({ "x-canary": "yes" })).headers.get("x-protomesh-subset") !== "canary"; waited++) {
      if (waited > 500) throw new Error("the canary rule never took effect");
      await new Promise((r) => setTimeout(r, 10));
    }
    await wrk(canaryUrl, 1, 2, auth);
    const guarded = await wrk(canaryUrl, 1, SECONDS, auth);
    let toCanary = 0;
    const sample = 400;
    for (let i = 0; i < sample; i++) if (((await (await ask({})).json()) as { servedBy: string }).servedBy === "greeter-v2") toCanary++;
    canaryGw.setPolicy({});
    out("Both runs go through the same gateway, whose upstream is `etcd:///http-greeter` (two greeters, v1 and v2, in this process): plain has no policy; the other has JWT auth, a local rate limit keyed by `sub`, and a rule sending `x-canary: yes` to v2 and the rest 90/10 to v1/v2.\n");
    out(`- plain: ${fmt(plain)}\n- JWT + rate limit + canary rule: ${fmt(guarded)}\n- added per request: ${((1e6 / guarded.rps) - (1e6 / plain.rps)).toFixed(0)} µs (from mean service time 1/rps at c=1), p50 +${((guarded.p50 - plain.p50) * 1000).toFixed(0)} µs\n- canary share, ${sample} requests after the run: ${((100 * toCanary) / sample).toFixed(1)} % to v2 (rule: 10 %)`);

    // 3. Cluster rate limit accuracy: its own bench, with the load in separate processes.
    out("\n### 3. Cluster rate limit\n");
    out("- measured by `node bin/run.js bench/gateway-cluster-limit.ts` (3 gateway processes sharing one Redis limit, one load-generator process each)");

    // 4. Policy propagation.
    const followers: Gateway[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await createGateway({ upstreams: [upstream], accessLog: false, etcd: { endpoints: etcd.endpoints, namespace }, env: "bench" });
      gateways.push(g);
      followers.push(g);
      await g.listen(0);
    }
    const store = new PolicyStore({ endpoints: etcd.endpoints, namespace, env: "bench" });
    out("\n### 4. Policy change in etcd → applied by all 3 gateways (40 trials)\n");
    const delays: number[] = [];
    for (let i = 0; i < 40; i++) {
      const start = performance.now();
      const r = await store.write({ defaults: { timeoutMs: 1000 + i } });
      while (!followers.every((g) => g.policy.version >= r.version)) await new Promise((res) => setImmediate(res));
      delays.push(performance.now() - start);
    }
    out(`- write + apply everywhere: p50 ${pct(delays, 0.5).toFixed(1)} ms, p99 ${pct(delays, 0.99).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms (includes the etcd write's own round trips)`);
    store.close();
  } finally {
    for (const g of gateways) await g.close();
    for (const g of greeters) await g.shutdown();
    await mesh.close();
    await etcd.stop();
  }

  // 5. Transcoding cost.
  out("\n### 5. Transcoding cost per payload size (examples.gateway.v1.EchoRequest with `tags`, in-process)\n");
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: filesFromDescriptors(HttpGreeterDefinition.descriptors) }));
  const desc = registry.getMessage("examples.gateway.v1.EchoRequest")!;
  out("| JSON size | JSON → proto | µs/B | proto → JSON | µs/B |");
  out("|---|---|---|---|---|");
  for (const size of [1024, 64 * 1024]) {
    const tags: string[] = [];
    let json = { id: "x", big: "123", tags };
    while (JSON.stringify(json).length < size) tags.push("tag-value-0123456789");
    json = { ...json, tags };
    const text = JSON.stringify(json);
    const bytes = toBinary(desc, fromJson(desc, JSON.parse(text)));
    const time = (fn: () => void) => {
      for (let i = 0; i < 200; i++) fn();
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        const n = size > 10_000 ? 200 : 5000;
        const t = performance.now();
        for (let i = 0; i < n; i++) fn();
        runs.push(((performance.now() - t) * 1000) / n);
      }
      return pct(runs, 0.5);
    };
    const inUs = time(() => toBinary(desc, fromJson(desc, JSON.parse(text))));
    const outUs = time(() => JSON.stringify(toJson(desc, fromBinary(desc, bytes))));
    out(`| ${text.length} B | ${inUs.toFixed(1)} µs | ${(inUs / text.length).toFixed(4)} | ${outUs.toFixed(1)} µs | ${(outUs / text.length).toFixed(4)} |`);
  }

  await gw.close();
  hand.close();
  forwarding.close();
  client.close();
  await server.shutdown();
  if (flags.out) fs.writeFileSync(flags.out, `${lines.join("\n")}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
