/** `protomesh tx-server`: runs one coordinator instance until SIGINT/SIGTERM. */
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../../cli/command";
import { etcdRegistry } from "../../registry/etcd/registry";
import { setDefaultDiscovery } from "../../registry/etcd/resolver";
import { createTxServer, DEFAULT_TX_SERVICE } from "../server/tx-server";
import { embeddedStore, postgresStore } from "../store/open-store";

const USAGE = `usage: protomesh tx-server [options]

Runs a transaction coordinator (TCC, saga, reliable messages, notifications) as a protomesh
service. Run several against one Postgres database: any instance drives any transaction.

options:
  --postgres URL            the store (default PROTOMESH_TX_POSTGRES); without it, the embedded
                            store (PGlite) — in memory, or in --data-dir
  --data-dir DIR            keep the embedded store in DIR (one process per directory)
  --listen ADDR             address to serve on (default 127.0.0.1:7070; port 0 picks one)
  --name NAME               service name in the registry (default ${DEFAULT_TX_SERVICE})
  --endpoints LIST          etcd endpoints, comma-separated (default ETCD_ENDPOINTS); none:
                            serve without registering
  --namespace NS            registry namespace (default PROTOMESH_NAMESPACE, else "default")
  --instance-id ID          this instance's name as a transaction owner (default random)
  --poll-ms N               how often to look for due transactions (default 1000)
  --timeout-ms N            default timeout to abort a prepared transaction (default 35000)
  --retry-interval-ms N     default first retry wait, doubling (default 10000)
  --max-retry-interval-ms N default cap of the retry wait (default 600000)
  --request-timeout-ms N    default deadline of a branch call (default 3000)
  --retry-limit N           default rounds before giving up (default 0: never)
  --alert-webhook URL       POST alerts (a branch keeps failing, a transaction gave up) here
  --metrics-port N          serve Prometheus /metrics on this port
  -h, --help                show this help

Warnings and errors are printed to stderr as JSON lines: alerts ("transaction alert": a branch
keeps failing, a transaction gave up) and the store becoming unreachable. --verbose (or
PROTOMESH_LOG_LEVEL) prints the other log lines too.
`;

const NUMBERS = ["poll-ms", "timeout-ms", "retry-interval-ms", "max-retry-interval-ms", "request-timeout-ms", "retry-limit", "metrics-port"] as const;

export const txServerCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let v: Record<string, string | boolean | undefined>;
    try {
      v = parseArgs({
        args,
        options: {
          postgres: { type: "string" },
          "data-dir": { type: "string" },
          listen: { type: "string" },
          name: { type: "string" },
          endpoints: { type: "string" },
          namespace: { type: "string" },
          "instance-id": { type: "string" },
          "alert-webhook": { type: "string" },
          ...Object.fromEntries(NUMBERS.map((n) => [n, { type: "string" as const }])),
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (err) {
      return printUsageError(io, "tx-server", (err as Error).message);
    }
    if (v.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }
    const num = (name: (typeof NUMBERS)[number]): number | undefined => {
      const s = v[name] as string | undefined;
      if (s === undefined) return undefined;
      if (!/^\d+$/.test(s)) throw new UsageError(`--${name} must be a whole number, got "${s}"`);
      return Number(s);
    };
    // What is open so far, closed again when start-up fails (an open handle would keep the process alive).
    const opened: Array<() => Promise<unknown>> = [];
    try {
      const postgres = (v.postgres as string | undefined) ?? io.env.PROTOMESH_TX_POSTGRES;
      if (postgres && v["data-dir"]) throw new UsageError("--postgres and --data-dir do not go together");
      const endpoints = ((v.endpoints as string | undefined) ?? io.env.ETCD_ENDPOINTS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      // Every flag is checked before anything is opened: a usage error must not leave a store or an etcd client open.
      const metricsPort = num("metrics-port");
      const defaults = clean({ timeoutMs: num("timeout-ms"), retryIntervalMs: num("retry-interval-ms"), maxRetryIntervalMs: num("max-retry-interval-ms"), requestTimeoutMs: num("request-timeout-ms"), retryLimit: num("retry-limit") });
      const pollIntervalMs = num("poll-ms");
      const alertWebhook = v["alert-webhook"] as string | undefined;
      if (alertWebhook !== undefined && !isHttpUrl(alertWebhook)) {
        // Checked now: a bad URL would otherwise show only when the first alert cannot be sent.
        throw new UsageError(`--alert-webhook must be an http:// or https:// URL, got "${alertWebhook}"`);
      }
      const registry = endpoints.length > 0 ? etcdRegistry({ endpoints, namespace: v.namespace as string | undefined }) : undefined;
      if (registry) {
        setDefaultDiscovery(registry);
        opened.push(() => registry.close());
      }
      const store = postgres ? await postgresStore(postgres) : await embeddedStore(v["data-dir"] as string | undefined);
      opened.unshift(() => store.close());
      const tx = await createTxServer({
        store,
        closeStore: true,
        instanceId: v["instance-id"] as string | undefined,
        pollIntervalMs,
        alertWebhook,
        defaults,
        server: { name: (v.name as string | undefined) ?? DEFAULT_TX_SERVICE, registry, ...(metricsPort !== undefined ? { metrics: { port: metricsPort } } : {}) },
      });
      await tx.listen((v.listen as string | undefined) ?? "127.0.0.1:7070");
      io.out(`protomesh tx-server: serving on ${tx.server.address} as ${tx.server.name}, instance ${tx.coordinator.id}, store ${postgres ? "postgres" : v["data-dir"] ? `embedded (${String(v["data-dir"])})` : "embedded (in memory)"}${registry ? "" : ", not registered (no etcd endpoints)"}\n`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await tx.shutdown();
      await registry?.close();
      return ExitCode.ok;
    } catch (err) {
      for (const close of opened) await close().catch(() => undefined);
      if (err instanceof UsageError) return printUsageError(io, "tx-server", err.message);
      io.err(`protomesh tx-server: ${err instanceof CliError || err instanceof Error ? err.message : String(err)}\n`);
      return ExitCode.failure;
    }
  },
};

function isHttpUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}

function clean<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}
