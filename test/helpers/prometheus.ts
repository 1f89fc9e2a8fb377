/**
 * A private Prometheus for integration specs: Debian's `prometheus` on a free loopback port with
 * a temporary data dir and a generated config (JSON is YAML), scraping every second so specs do
 * not wait long for samples. `startPrometheus()` inside a test is stopped by the root leftovers
 * hook if the test fails before its own `stop()`; `usePrometheus()` ties one to a suite.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deadPort } from "./etcd";
import { stopAfterTest } from "./leftovers";

export interface PrometheusOptions {
  /** `scrape_configs` entries, as Prometheus's YAML would hold them (default: none). */
  readonly scrapeConfigs?: readonly object[];
  /** `global.scrape_interval` and `evaluation_interval` (default 1 s). */
  readonly scrapeIntervalMs?: number;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface PrometheusServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** An instant query; the vector's samples (a scalar comes back as one sample without labels). */
  query(promql: string): Promise<PromSample[]>;
  /** The active targets, with their labels and last scrape health. */
  targets(): Promise<Array<{ labels: Record<string, string>; health: string; lastError: string }>>;
  /** SIGTERM (SIGKILL after 10 s), then the data dir is removed. Safe to call twice. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const FETCH_TIMEOUT_MS = 5000;

/** Starts Prometheus and resolves once `/-/ready` answers 200. */
export async function startPrometheus(options: PrometheusOptions = {}): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), "protomesh-prom-"));
  const port = await deadPort();
  const interval = `${options.scrapeIntervalMs ?? 1000}ms`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: options.scrapeConfigs ?? [],
  };
  writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const child = spawn(
    "prometheus",
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const spawnFailed = new Promise<never>((_, reject) => child.once("error", (err) => reject(new Error(`cannot run prometheus (install Debian's prometheus: node scripts/ensure-env.js --all): ${err.message}`))));
  const exited = new Promise<never>((_, reject) => child.once("exit", (code, signal) => reject(new Error(`prometheus exited (${code ?? signal}): ${stderr.trim()}`))));
  spawnFailed.catch(() => undefined);
  exited.catch(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await terminate(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await Promise.race([ready(url), spawnFailed, exited]))) {
      if (Date.now() > deadline) throw new Error(`prometheus was not ready on port ${port} within ${READY_TIMEOUT_MS / 1000} s: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const server: PrometheusServer = {
    port,
    url,
    async query(promql) {
      const body = await api<{ resultType: string; result: unknown }>(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      if (body.resultType === "scalar") return [{ metric: {}, value: Number((body.result as [number, string])[1]) }];
      return (body.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async targets() {
      const body = await api<{ activeTargets: Array<{ labels: Record<string, string>; health: string; lastError: string }> }>(`${url}/api/v1/targets?state=active`);
      return body.activeTargets;
    },
    stop,
  };
  return stopAfterTest(server);
}

/** Registers before/after hooks around one Prometheus for the suite; `options` is read in `before`. */
export function usePrometheus(options: () => PrometheusOptions = () => ({})): { readonly server: PrometheusServer } {
  let server: PrometheusServer | undefined;
  before(async function () {
    this.timeout(READY_TIMEOUT_MS + 10_000);
    server = await startPrometheus(options());
  });
  after(async function () {
    this.timeout(20_000);
    await server?.stop();
    server = undefined;
  });
  return {
    get server() {
      if (!server) throw new Error("prometheus is not running (use it inside tests or hooks)");
      return server;
    },
  };
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`prometheus: ${body.error ?? res.status}`);
  return body.data;
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
