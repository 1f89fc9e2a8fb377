/**
 * Scenario 8 (opt-in, `--only instructions`): machine instructions per call and per
 * message, counted by `valgrind --tool=callgrind` in one process at a time while a fixed
 * amount of work goes through it. Unlike req/s or CPU time, an instruction count does not
 * move when other programs load the machine, so it is how a gap of a few percent is found
 * and checked on a busy VM.
 *
 * Servers are measured with a raw grpc-js client driving them (so each sees the same
 * traffic); clients against a raw grpc-js server. Instrumentation is switched on only
 * after start-up and a warm-up, and counts are zeroed before and dumped after each
 * workload; the dumps stay on disk for `callgrind_annotate`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { BenchContext } from "./context";
import type { ClientKind, FixedArgs, InitClientArgs, TargetSpec } from "./echo-client";
import { ECHO_SERVICE, SAMPLE_RATIO, UNSCOPED_ECHO_SERVICE } from "./echo-fleet";
import type { StartServerArgs } from "./echo-server";
import type { FixedResult } from "./load";
import { int, table, times, type Section } from "./report";
import { BenchWorker } from "./workers";

interface Workload {
  readonly id: string;
  readonly label: string;
  readonly kind: "unary" | "stream";
  readonly payloadBytes: number;
  readonly concurrency: number;
  /** Calls, or streams of `perStream` messages. */
  readonly total: number;
  readonly perStream?: number;
}

function workloads(quick: boolean): Workload[] {
  const scale = quick ? 0.1 : 1;
  const n = (x: number) => Math.max(10, Math.round(x * scale));
  return [
    { id: "unary-c1", label: "unary 100 B, c=1", kind: "unary", payloadBytes: 100, concurrency: 1, total: n(2000) },
    { id: "unary-c100", label: "unary 100 B, c=100", kind: "unary", payloadBytes: 100, concurrency: 100, total: n(4000) },
    { id: "unary-64k", label: "unary 64 KiB, c=10", kind: "unary", payloadBytes: 64 * 1024, concurrency: 10, total: n(500) },
    { id: "unary-1m", label: "unary 1 MiB, c=4", kind: "unary", payloadBytes: 1024 * 1024, concurrency: 4, total: n(60) },
    { id: "stream", label: "server streaming 1 KiB, 4 streams", kind: "stream", payloadBytes: 1024, concurrency: 4, total: n(20), perStream: 1000 },
  ];
}

interface Subject {
  readonly id: string;
  readonly label: string;
  readonly side: "server" | "client";
  /** Extra environment of the measured process (OpenTelemetry's grpc instrumentation). */
  readonly env?: Record<string, string>;
}

/**
 * Who drives a server: a raw grpc-js client, or (for traced servers, so that each gets a
 * `traceparent` as it would in production) a traced client of the same kind.
 */
type Driver = "raw" | "traced" | "sampled" | "otel";

const OTEL_ENV = { BENCH_OTEL_GRPC: "1" };

const DRIVERS: Record<Driver, { init: Omit<InitClientArgs, "etcdEndpoints" | "namespace">; env?: Record<string, string> }> = {
  raw: { init: { kind: "raw" } },
  traced: { init: { kind: "protomesh", tracing: true, keepalive: false } },
  sampled: { init: { kind: "protomesh", tracing: true, sampleRatio: SAMPLE_RATIO, keepalive: false } },
  otel: { init: { kind: "raw", tracing: true }, env: OTEL_ENV },
};

const SERVERS: (Subject & { args: (ctx: BenchContext) => StartServerArgs; driver?: Driver })[] = [
  { id: "server-raw", label: "raw grpc-js server", side: "server", args: () => ({ kind: "raw" }) },
  {
    id: "server-protomesh",
    label: "protomesh server (registered in etcd)",
    side: "server",
    args: (ctx) => ({ kind: "protomesh", service: `${ECHO_SERVICE}-cg`, etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace }),
  },
  {
    id: "server-unscoped",
    label: "protomesh server, callScope: false",
    side: "server",
    args: (ctx) => ({ kind: "protomesh", service: `${UNSCOPED_ECHO_SERVICE}-cg`, etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace, callScope: false }),
  },
  { id: "server-nice", label: "nice-grpc server", side: "server", args: () => ({ kind: "nice" }) },
  // Tracing (OpenTelemetry SDK, spans dropped), each driven by a client of its own kind that sends `traceparent`.
  {
    id: "server-traced",
    label: "protomesh server, tracing on",
    side: "server",
    driver: "traced",
    args: (ctx) => ({ kind: "protomesh", service: `${ECHO_SERVICE}-cg-traced`, etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace, tracing: true }),
  },
  {
    id: "server-sampled",
    label: `protomesh server, tracing on, ${SAMPLE_RATIO * 100} % sampled`,
    side: "server",
    driver: "sampled",
    args: (ctx) => ({ kind: "protomesh", service: `${ECHO_SERVICE}-cg-sampled`, etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace, tracing: true, sampleRatio: SAMPLE_RATIO }),
  },
  { id: "server-otel", label: "raw grpc-js server + instrumentation-grpc", side: "server", driver: "otel", env: OTEL_ENV, args: () => ({ kind: "raw", tracing: true }) },
];

const CLIENTS: (Subject & { kind: ClientKind; tracing?: boolean; sampleRatio?: number; target: (rawAddress: string) => TargetSpec })[] = [
  { id: "client-raw", label: "raw grpc-js client", side: "client", kind: "raw", target: (address) => ({ address }) },
  { id: "client-protomesh", label: "protomesh client (etcd:///, round_robin)", side: "client", kind: "protomesh", target: () => ({ service: `${ECHO_SERVICE}-cg-raw`, balancer: "round_robin" }) },
  { id: "client-nice", label: "nice-grpc client", side: "client", kind: "nice", target: (address) => ({ address }) },
  { id: "client-traced", label: "protomesh client, tracing on", side: "client", kind: "protomesh", tracing: true, target: () => ({ service: `${ECHO_SERVICE}-cg-raw`, balancer: "round_robin" }) },
  { id: "client-sampled", label: `protomesh client, tracing on, ${SAMPLE_RATIO * 100} % sampled`, side: "client", kind: "protomesh", tracing: true, sampleRatio: SAMPLE_RATIO, target: () => ({ service: `${ECHO_SERVICE}-cg-raw`, balancer: "round_robin" }) },
  { id: "client-otel", label: "raw grpc-js client + instrumentation-grpc", side: "client", kind: "raw", tracing: true, env: OTEL_ENV, target: (address) => ({ address }) },
];

/** Each traced subject against its untraced pair: what tracing adds. */
const TRACING_PAIRS: [traced: string, base: string][] = [
  ["server-traced", "server-protomesh"],
  ["server-sampled", "server-protomesh"],
  ["server-otel", "server-raw"],
  ["client-traced", "client-protomesh"],
  ["client-sampled", "client-protomesh"],
  ["client-otel", "client-raw"],
];

/** Total instructions (Ir) in one callgrind dump. */
function instructionsIn(file: string): number {
  const text = readFileSync(file, "utf8");
  const m = /^(?:totals|summary):\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

function fixedArgs(w: Workload, target: TargetSpec): FixedArgs {
  return { target, payloadBytes: w.payloadBytes, total: w.total, concurrency: w.concurrency, perStream: w.perStream };
}

/** Valgrind's own messages go to a file beside the dumps, not into the report's stderr. */
async function runFixed(client: BenchWorker, w: Workload, target: TargetSpec, total = w.total): Promise<FixedResult> {
  const r = await client.call<FixedResult>(w.kind === "unary" ? "unaryFixed" : "streamFixed", { ...fixedArgs(w, target), total });
  if (r.errors > 0) throw new Error(`${w.label}: ${r.errors} calls failed: ${r.firstError}`);
  return r;
}

/** Measures every workload in `measured` (already started, instrumentation off), driven through `drive`. */
async function countWorkloads(ctx: BenchContext, measured: BenchWorker, outBase: string, drive: (w: Workload, total?: number) => Promise<FixedResult>, list: Workload[]): Promise<Map<string, { perUnit: number; file: string }>> {
  const counts = new Map<string, { perUnit: number; file: string }>();
  let dumps = 0;
  for (const w of list) {
    // Warm-up (JIT, connections, buffers) with instrumentation off: it is faster, and does not count.
    await drive(w);
    for (let attempt = 0; attempt < 2; attempt++) {
      await measured.callgrind("-i", "on");
      await measured.callgrind("-z");
      const r = await drive(w);
      await measured.callgrind("-d");
      await measured.callgrind("-i", "off");
      const file = `${outBase}.${++dumps}`;
      const perUnit = instructionsIn(file) / r.done;
      ctx.log(`instructions: ${path.basename(outBase)} ${w.label}: ${int(perUnit)} per ${w.kind === "unary" ? "call" : "message"}`);
      if (perUnit < (counts.get(w.id)?.perUnit ?? Infinity)) counts.set(w.id, { perUnit, file });
    }
  }
  return counts;
}

/** `BENCH_CG_ONLY=server-raw,server-protomesh,unary-c1` narrows a run to some processes and workloads (each takes minutes under valgrind). */
function narrowed<T extends { id: string }>(items: readonly T[], allowAll: boolean): T[] {
  const only = process.env.BENCH_CG_ONLY?.split(",").map((s) => s.trim());
  if (!only) return [...items];
  const picked = items.filter((i) => only.includes(i.id));
  return picked.length === 0 && allowAll ? [...items] : picked;
}

export async function runInstructions(ctx: BenchContext): Promise<Section> {
  if (spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status !== 0) throw new Error("--only instructions needs valgrind (apt-get install valgrind)");
  const dir = ctx.profileDir ?? mkdtempSync(path.join(tmpdir(), "protomesh-callgrind-"));
  const list = narrowed(workloads(ctx.quick), true);
  const servers = narrowed(SERVERS, false);
  const clients = narrowed(CLIENTS, false);
  const results = new Map<string, Map<string, { perUnit: number; file: string }>>();
  const etcd = { etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace };
  const startTimeoutMs = 600_000;

  // Servers, each driven by a native grpc-js client (raw, or traced for traced servers) at its static address.
  const drivers = new Map<Driver, BenchWorker>();
  const driverOf = async (kind: Driver): Promise<BenchWorker> => {
    let worker = drivers.get(kind);
    if (!worker) {
      worker = await BenchWorker.start(`cg-driver-${kind}`, "echo-client.ts", { cpu: ctx.cpus.client, env: DRIVERS[kind].env });
      drivers.set(kind, worker);
      await worker.call("init", { ...DRIVERS[kind].init, ...etcd } satisfies InitClientArgs);
    }
    return worker;
  };
  try {
    for (const s of servers) {
      ctx.log(`instructions: starting ${s.label} under callgrind`);
      const outBase = path.join(dir, s.id);
      const driver = await driverOf(s.driver ?? "raw");
      const server = await BenchWorker.start(`cg-${s.id}`, "echo-server.ts", { cpu: ctx.cpus.server, callgrindOut: outBase, startTimeoutMs, env: s.env });
      try {
        const { address } = await server.call<{ address: string }>("start", s.args(ctx));
        const target = { address };
        await driver.call("ready", { target, timeoutMs: 120_000 });
        results.set(s.id, await countWorkloads(ctx, server, outBase, (w, total) => runFixed(driver, w, target, total), list));
        await server.call("stop");
      } finally {
        await server.stop(60_000);
      }
    }
  } finally {
    for (const worker of drivers.values()) await worker.stop();
  }

  // Clients, each against a native raw grpc-js server (registered for the protomesh client's etcd:/// target).
  if (clients.length > 0) await measureClients(ctx, clients, list, dir, results);

  const rowsFor = (subjects: Subject[], baseId: string) =>
    subjects
      .filter((s) => results.has(s.id))
      .map((s) => {
        const own = results.get(s.id)!;
        const base = results.get(baseId);
        return [s.label, ...list.map((w) => `${int(own.get(w.id)!.perUnit)}${base ? ` (${times(own.get(w.id)!.perUnit / base.get(w.id)!.perUnit)})` : ""}`)];
      });
  const header = ["process", ...list.map((w) => `${w.label}, per ${w.kind === "unary" ? "call" : "message"}`)];
  return {
    title: "8. Instructions per call (valgrind --tool=callgrind)",
    body: [
      `Instructions the measured process executed (all its threads, garbage collection and JIT compilation included) for a fixed amount of work, divided by the calls or messages completed; in brackets, the ratio to raw grpc-js on the same side. Each workload is run twice with instrumentation on after a warm-up as long, and the lower count is kept (the first can still include optimizing compilations). Servers are driven by a raw grpc-js client, clients call a raw grpc-js server. Load on the machine does not change these counts. Dumps for \`callgrind_annotate\`: \`${dir}\`.`,
      "Servers:",
      table(header, rowsFor(servers, "server-raw")),
      "Clients:",
      table(header, rowsFor(clients, "client-raw")),
      ...tracingBody(list, results),
    ],
    goals: [],
    data: Object.fromEntries([...results].map(([id, m]) => [id, Object.fromEntries(m)])),
  };
}

async function measureClients(ctx: BenchContext, clients: typeof CLIENTS, list: Workload[], dir: string, results: Map<string, Map<string, { perUnit: number; file: string }>>): Promise<void> {
  const etcd = { etcdEndpoints: ctx.etcdEndpoints, namespace: ctx.namespace };
  const startTimeoutMs = 600_000;
  const rawServer = await BenchWorker.start("cg-raw-server", "echo-server.ts", { cpu: ctx.cpus.server });
  try {
    const { address } = await rawServer.call<{ address: string }>("start", { kind: "raw", registerAs: `${ECHO_SERVICE}-cg-raw`, ...etcd } satisfies StartServerArgs);
    for (const c of clients) {
      ctx.log(`instructions: starting ${c.label} under callgrind`);
      const outBase = path.join(dir, c.id);
      const client = await BenchWorker.start(`cg-${c.id}`, "echo-client.ts", { cpu: ctx.cpus.client, callgrindOut: outBase, startTimeoutMs, env: c.env });
      try {
        // No keepalive pings: under valgrind a ping's answer can take longer than the 2 s a
        // protomesh client waits for it, and the connection would be dropped mid-workload.
        await client.call("init", { kind: c.kind, tracing: c.tracing, sampleRatio: c.sampleRatio, ...(c.kind === "protomesh" ? { keepalive: false } : {}), ...etcd } satisfies InitClientArgs);
        const target = c.target(address);
        await client.call("ready", { target, timeoutMs: 120_000 });
        results.set(c.id, await countWorkloads(ctx, client, outBase, (w, total) => runFixed(client, w, target, total), list));
      } finally {
        await client.stop(60_000);
      }
    }
  } finally {
    await rawServer.call("stop").catch(() => undefined);
    await rawServer.stop();
  }
}

/** Instructions per call that tracing adds to each side, against the same process kind untraced. */
function tracingBody(list: Workload[], results: Map<string, Map<string, { perUnit: number; file: string }>>): string[] {
  const pairs = TRACING_PAIRS.filter(([traced, base]) => results.has(traced) && results.has(base));
  if (pairs.length === 0) return [];
  const labels = new Map<string, string>([...SERVERS, ...CLIENTS].map((s) => [s.id, s.label]));
  const rows = pairs.map(([traced, base]) => {
    const own = results.get(traced)!;
    const theirs = results.get(base)!;
    return [
      `${labels.get(traced)} (vs ${labels.get(base)})`,
      ...list.map((w) => {
        const added = own.get(w.id)!.perUnit - theirs.get(w.id)!.perUnit;
        return `${added >= 0 ? "+" : ""}${int(added)} (${times(own.get(w.id)!.perUnit / theirs.get(w.id)!.perUnit)})`;
      }),
    ];
  });
  return [
    "Tracing: instructions added per call or message against the same process untraced (the OpenTelemetry SDK set up by `setupTracing`, spans batched to an exporter that drops them; a traced server is driven by a traced client of its own kind, so it receives `traceparent`).",
    table(["traced process", ...list.map((w) => `${w.label}, per ${w.kind === "unary" ? "call" : "message"}`)], rows),
  ];
}
