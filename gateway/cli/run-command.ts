import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { CliError, ExitCode, UsageError, type CliIo } from "../../cli/command";
import { createEtcdClient, resolveEtcdOptions } from "../../registry/etcd/options";
import { etcdRegistry } from "../../registry/etcd/registry";
import { buildLoadBalancingConfig, type BalancerOption, type OutlierDetectionOption } from "../../runtime/balancing/service-config";
import { createJsonLogger, getLogger } from "../../runtime/logger";
import { serveMetrics } from "../../runtime/metrics-endpoint";
import { tracingRequested } from "../../tracing/options";
import { RegistryRoutes } from "../discovery";
import { createGateway, type GatewayOptions } from "../gateway";
import { validatePolicy } from "../policy-validate";
import { filesFromDescriptorSet, RouteTable, type BoundRoute } from "../route-table";
import { checkTls, GatewayTlsError, readTlsFiles, type TlsMaterial } from "../tls";
import { Upstreams } from "../upstreams";
import type { GatewayFlags } from "./command";

/** Start-up defaults from `--config FILE`: the same names as the flags, plus a `policy`. */
interface FileConfig extends Partial<Record<keyof GatewayFlags, unknown>> {
  policy?: unknown;
}

/** What `--config FILE` may hold: the options of `protomesh gateway run`, and a start-up `policy`. */
const CONFIG_KEYS: readonly string[] = [
  "port", "host", "etcd", "namespace", "name", "env", "descriptor-set", "target", "no-discover", "services",
  "unannotated", "redis", "tls-cert", "tls-key", "method-override", "balancer", "outlier-detection", "metrics-port",
  "no-access-log", "policy",
];

/** Keys whose value in `--config` may be a mapping, kept as given (a flag gives the simple form). */
const STRUCTURED_KEYS: readonly string[] = ["policy", "balancer", "outlier-detection"];

type RunFlags = Omit<GatewayFlags, "balancer" | "outlier-detection"> & { policy?: unknown; balancer?: unknown; "outlier-detection"?: unknown };

function readConfig(flags: GatewayFlags, io: CliIo): RunFlags {
  if (!flags.config) return flags;
  const file = path.resolve(io.cwd, flags.config);
  let data: unknown;
  try {
    data = parseYaml(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new CliError(`cannot read --config ${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new CliError(`--config ${file} must hold a mapping`);
  const unknown = Object.keys(data).filter((k) => !CONFIG_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new CliError(`--config ${file}: unknown ${unknown.length === 1 ? "key" : "keys"} ${unknown.map((k) => JSON.stringify(k)).join(", ")} (known: ${CONFIG_KEYS.join(", ")})`);
  }
  const fromFile: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data as FileConfig)) {
    fromFile[k] = STRUCTURED_KEYS.includes(k) || typeof v === "boolean" ? v : Array.isArray(v) ? v.join(",") : String(v);
  }
  return { ...(fromFile as RunFlags), ...flags };
}

/** `--balancer NAME` (or `balancer:` in `--config`, which may also be a client's `balancer` object). */
function balancerOf(value: unknown): BalancerOption | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "object" && value !== null) return value as BalancerOption;
  const names: Record<string, BalancerOption> = { round_robin: "round_robin", p2c: "p2c", least_request: "least_request", consistent_hash: { consistentHash: {} }, pick_first: "pick_first" };
  const name = String(value);
  if (!Object.hasOwn(names, name)) throw new UsageError(`--balancer must be one of ${Object.keys(names).join(", ")}, got ${JSON.stringify(name)}`);
  return names[name];
}

/** `--outlier-detection` (or `outlier-detection:` in `--config`: true, false, or a client's `outlierDetection` settings). */
function outlierDetectionOf(value: unknown): OutlierDetectionOption | boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as OutlierDetectionOption;
  throw new UsageError(`outlier-detection must be true, false or a mapping of settings (intervalMs, threshold, requestVolume, …), got ${JSON.stringify(value)}`);
}

function gatewayOptions(flags: RunFlags, io: CliIo): GatewayOptions {
  const endpoints = flags.etcd ?? io.env.ETCD_ENDPOINTS;
  const etcd = endpoints ? { endpoints: endpoints.split(",").map((e) => e.trim()).filter((e) => e !== ""), namespace: flags.namespace ?? io.env.PROTOMESH_NAMESPACE } : undefined;
  const upstreams: NonNullable<GatewayOptions["upstreams"]>[number][] = [];
  if (flags["descriptor-set"]) {
    if (!flags.target) throw new UsageError("--descriptor-set needs --target (where its services run, e.g. etcd:///greeter)");
    const file = path.resolve(io.cwd, flags["descriptor-set"]);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      throw new CliError(`cannot read --descriptor-set ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    upstreams.push({ target: flags.target, files: filesFromDescriptorSet(bytes) });
  }
  const discover = etcd && !flags["no-discover"] ? (flags.services ? { services: flags.services.split(",").map((s) => s.trim()) } : true) : false;
  if (!etcd && upstreams.length === 0) throw new UsageError("nothing to route: give --etcd (or ETCD_ENDPOINTS) to discover services, or --descriptor-set with --target");
  if (Boolean(flags["tls-cert"]) !== Boolean(flags["tls-key"])) throw new UsageError("--tls-cert and --tls-key go together");
  if (flags.redis !== undefined && !/^rediss?:\/\/[^/]/.test(flags.redis)) {
    // Checked now: a bad address would show only as every cluster limit falling back to its local bucket.
    throw new UsageError(`--redis must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, got ${JSON.stringify(flags.redis)}`);
  }
  const balancer = balancerOf(flags.balancer);
  const outlierDetection = outlierDetectionOf(flags["outlier-detection"]);
  try {
    buildLoadBalancingConfig({ balancer, outlierDetection });
  } catch (err) {
    // A setting out of range, from --config: one line naming it, before anything starts.
    throw new CliError((err as Error).message);
  }
  return {
    upstreams,
    etcd,
    discover,
    name: flags.name,
    env: flags.env ?? io.env.PROTOMESH_ENV,
    policy: flags.policy === undefined ? undefined : validatePolicy(flags.policy),
    unannotated: flags.unannotated === true,
    redis: flags.redis,
    methodOverride: flags["method-override"] === true,
    balancer,
    outlierDetection,
    tls: flags["tls-cert"] ? tlsFiles(path.resolve(io.cwd, flags["tls-cert"]), path.resolve(io.cwd, flags["tls-key"]!)) : undefined,
  };
}

function tlsFiles(certFile: string, keyFile: string): TlsMaterial {
  try {
    const material = readTlsFiles(certFile, keyFile);
    checkTls(material);
    return material;
  } catch (err) {
    if (err instanceof GatewayTlsError) throw new CliError(`--tls-cert ${certFile} / --tls-key ${keyFile}: ${err.message}`);
    throw err;
  }
}

function portOf(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(String(value)) || port > 65535) throw new UsageError(`${flag} must be 0-65535, got ${JSON.stringify(value)}`);
  return port;
}

/** `protomesh gateway [run]`: serves until SIGINT or SIGTERM. */
export async function runCommand(rawFlags: GatewayFlags, args: string[], io: CliIo): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  const flags = readConfig(rawFlags, io);
  const port = portOf(flags.port, "--port") ?? 8080;
  const metricsPort = portOf(flags["metrics-port"], "--metrics-port");
  const options = gatewayOptions(flags, io);
  // The access log is the gateway's output, on stdout at any log level; the framework's own
  // warnings and errors go to stderr (info and debug behind --verbose / PROTOMESH_LOG_LEVEL).
  const accessLog = flags["no-access-log"] === true ? false : createJsonLogger({ level: "info", write: (line) => io.out(`${line}\n`), bindings: { component: "gateway" } });
  // What is open so far, closed again (last first) when start-up fails or the gateway stops.
  const opened: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of opened.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    if (tracingRequested(io.env)) {
      // Loaded only when asked for: the OpenTelemetry SDK is an optional peer dependency.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { setupTracing } = require("../../tracing/setup-tracing") as typeof import("../../tracing/setup-tracing");
      let stopTracing: () => Promise<void>;
      try {
        stopTracing = setupTracing({ serviceName: io.env.OTEL_SERVICE_NAME || `gateway.${flags.name ?? "default"}` });
      } catch (err) {
        throw new CliError(`cannot set up tracing: ${(err as Error).message}`);
      }
      opened.push(() => stopTracing());
    }
    const gateway = await createGateway({ ...options, accessLog });
    opened.push(() => gateway.close());
    const host = flags.host ?? "127.0.0.1";
    let bound: number;
    try {
      bound = await gateway.listen(port, host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new CliError(`${host}:${port} is in use; pick another port with --port`);
      if (code === "EACCES" || code === "EADDRNOTAVAIL") throw new CliError(`cannot listen on ${host}:${port}: ${(err as Error).message}`);
      throw err;
    }
    let metricsUrl: string | undefined;
    if (metricsPort !== undefined) {
      try {
        const endpoint = await serveMetrics({ port: metricsPort });
        opened.push(() => endpoint.close());
        metricsUrl = endpoint.url;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE") throw new CliError(`metrics port ${metricsPort} is in use; pick another with --metrics-port`);
        throw err;
      }
    }
    io.out(`gateway listening on ${flags["tls-cert"] ? "https" : "http"}://${host}:${bound} (${gateway.routes().length} ${gateway.routes().length === 1 ? "route" : "routes"}, policy version ${gateway.policy.version})\n`);
    if (metricsUrl) io.out(`metrics on ${metricsUrl}\n`);
  } catch (err) {
    // Close what was opened (etcd watches, upstream channels, the exporter), or the process stays up.
    await closeAll();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await closeAll();
  return ExitCode.ok;
}

/** `protomesh gateway routes`: the table the gateway would serve now. */
export async function routesCommand(rawFlags: GatewayFlags, args: string[], io: CliIo): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  const options = gatewayOptions(readConfig(rawFlags, io), io);
  const table = new RouteTable(options.unannotated === true);
  for (const [i, up] of (options.upstreams ?? []).entries()) table.put({ id: `static:${i}`, target: up.target, files: up.files ?? [] });
  if (options.etcd && options.discover) {
    const resolved = resolveEtcdOptions(options.etcd);
    const client = createEtcdClient(resolved);
    const registry = etcdRegistry(options.etcd);
    const upstreams = new Upstreams(registry);
    const problems: string[] = [];
    const discovery = new RegistryRoutes({
      client, namespace: resolved.namespace, callTimeoutMs: resolved.callTimeoutMs, table, upstreams,
      logger: getLogger().child({ component: "gateway" }),
      only: typeof options.discover === "object" ? options.discover.services : undefined,
      onRefresh: (name, _n, err) => void (err && problems.push(`${name}: ${err.message}`)),
    });
    try {
      await discovery.start();
    } finally {
      await discovery.stop();
      upstreams.close();
      await registry.close();
      client.close();
    }
    for (const p of problems) io.err(`protomesh gateway routes: ${p}\n`);
  }
  printRoutes(table.router.routes, io, rawFlags.json === true);
  return ExitCode.ok;
}

function printRoutes(routes: readonly BoundRoute[], io: CliIo, json: boolean): void {
  const rows = [...routes].sort((a, b) => a.template.source.localeCompare(b.template.source) || a.httpMethod.localeCompare(b.httpMethod));
  if (json) {
    io.out(`${JSON.stringify(rows.map((r) => ({ method: r.httpMethod, template: r.template.source, grpc: r.grpcPath, target: r.target, body: r.body ?? null, kind: r.kind })))}\n`);
    return;
  }
  const w = (pick: (r: BoundRoute) => string) => Math.max(0, ...rows.map((r) => pick(r).length));
  const wm = w((r) => r.httpMethod);
  const wt = w((r) => r.template.source);
  const wg = w((r) => r.grpcPath);
  for (const r of rows) io.out(`${r.httpMethod.padEnd(wm)}  ${r.template.source.padEnd(wt)}  → ${r.grpcPath.padEnd(wg)}  @ ${r.target}\n`);
  if (rows.length === 0) io.out("(no routes)\n");
}
