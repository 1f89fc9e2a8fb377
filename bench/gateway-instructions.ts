/**
 * `node bin/run.js bench/gateway-instructions.ts [--requests 1000] [--runs 3] [--connections 1] [--only gateway|hand] [--dir DIR] [--out FILE]`
 *
 * Machine instructions per HTTP request of the front process, the gateway next to the
 * hand-written `node:http` handler (`gateway-hand.ts`), counted by `valgrind --tool=callgrind`.
 * Unlike req/s or CPU time, an instruction count does not move when other programs load the
 * machine, so it is how the two fronts are compared on a busy shared VM.
 *
 * The greeter runs natively in its own process (`gateway-upstream.ts`), each front in its own
 * under callgrind (`gateway-front.ts`, instrumentation off until counted), and this process
 * drives it: `--requests` POST /v1/hello with `{"name":"bench"}` over `--connections`
 * keep-alive connections, each sending its next request when the previous answer is in (c=1
 * by default: the case where every request pays the front's work in full). Per front: a
 * warm-up twice as long with instrumentation off, then `--runs` counted runs; the lowest
 * count is kept (the first ones can still include optimizing compilations). Dumps stay in DIR for
 * `callgrind_annotate`.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { BenchWorker, stopAllWorkers } from "./workers";

const { values: flags } = parseArgs({
  options: {
    requests: { type: "string", default: "1000" },
    connections: { type: "string", default: "1" },
    runs: { type: "string", default: "3" },
    only: { type: "string", default: "" },
    dir: { type: "string", default: "" },
    out: { type: "string" },
  },
});
const REQUESTS = positive("--requests", flags.requests);
const CONNECTIONS = positive("--connections", flags.connections);
const RUNS = positive("--runs", flags.runs);
const ONLY = flags.only;
if (ONLY !== "" && ONLY !== "gateway" && ONLY !== "hand") throw new Error(`--only takes gateway or hand, got ${JSON.stringify(ONLY)}`);
const DIR = flags.dir || fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-gw-callgrind-"));
fs.mkdirSync(DIR, { recursive: true });
const OUT = flags.out;

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0)) throw new Error(`${name} needs a positive number, got ${JSON.stringify(text)}`);
  return n;
}
const BODY = '{"name":"bench"}';

/** `total` requests over `connections` sequential loops; resolves with the failures. */
async function drive(port: number, urlPath: string, total: number, connections: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let left = total;
  let failed = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const r = http.request({ host: "127.0.0.1", port, path: urlPath, method: "POST", agent, headers: { "content-type": "application/json", "content-length": BODY.length } }, (res) => {
        if (res.statusCode !== 200) failed++;
        res.resume();
        res.on("end", resolve);
      });
      r.on("error", () => {
        failed++;
        resolve();
      });
      r.end(BODY);
    });
  const loop = async () => {
    while (left > 0) {
      left--;
      await one();
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  return failed;
}

function instructionsIn(file: string): number {
  const m = /^(?:totals|summary):\s+(\d+)/m.exec(fs.readFileSync(file, "utf8"));
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

async function count(kind: "gateway" | "hand", upstream: string): Promise<{ perRequest: number; file: string }> {
  const outBase = path.join(DIR, kind);
  const front = await BenchWorker.start(`cg-${kind}`, "gateway-front.ts", { callgrindOut: outBase, startTimeoutMs: 600_000 });
  try {
    const port = await front.call<number>("start", { kind, upstream });
    const urlPath = kind === "gateway" ? "/v1/hello" : "/";
    // Warm-up, twice as long as a counted run: under valgrind, V8 reaches its optimized code late.
    await drive(port, urlPath, 2 * REQUESTS, CONNECTIONS);
    let best = { perRequest: Infinity, file: "" };
    for (let attempt = 1; attempt <= RUNS; attempt++) {
      await front.callgrind("-i", "on");
      await front.callgrind("-z");
      const failed = await drive(port, urlPath, REQUESTS, CONNECTIONS);
      await front.callgrind("-d");
      await front.callgrind("-i", "off");
      if (failed > 0) throw new Error(`${kind}: ${failed} of ${REQUESTS} requests failed`);
      const file = `${outBase}.${attempt}`;
      const perRequest = instructionsIn(file) / REQUESTS;
      process.stderr.write(`[gateway instructions] ${kind} run ${attempt}: ${Math.round(perRequest).toLocaleString("en-US")} instructions per request\n`);
      if (perRequest < best.perRequest) best = { perRequest, file };
    }
    return best;
  } finally {
    await front.stop(60_000);
  }
}

async function main(): Promise<void> {
  if (spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status !== 0) throw new Error("this bench needs valgrind (apt-get install valgrind)");
  const upstream = await BenchWorker.start("greeter", "gateway-upstream.ts");
  const address = `127.0.0.1:${await upstream.call<number>("listen")}`;
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  if (ONLY === "gateway" || ONLY === "hand") {
    const one = await count(ONLY, address);
    process.stdout.write(`${ONLY}: ${fmt(one.perRequest)} instructions per request (${REQUESTS} requests, c=${CONNECTIONS}); dump ${one.file}\n`);
    await stopAllWorkers();
    return;
  }
  const gateway = await count("gateway", address);
  const hand = await count("hand", address);
  const lines = [
    `Gateway instructions per request (valgrind --tool=callgrind), ${new Date().toISOString()}, Node ${process.version}; ${REQUESTS} requests per counted run, c=${CONNECTIONS}.`,
    "",
    "| front | instructions per request | vs hand-written |",
    "|---|---:|---:|",
    `| gateway | ${fmt(gateway.perRequest)} | ${(gateway.perRequest / hand.perRequest).toFixed(2)}× |`,
    `| hand-written node:http handler | ${fmt(hand.perRequest)} | 1.00× |`,
    "",
    `Dumps: ${gateway.file}, ${hand.file}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (OUT) fs.writeFileSync(OUT, `${lines.join("\n")}\n`);
  await stopAllWorkers();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[gateway instructions] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void stopAllWorkers().finally(() => process.exit(1));
  },
);
