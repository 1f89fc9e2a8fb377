/**
 * `protomesh prometheus-sd`: Prometheus service discovery from the etcd registry, so the series of
 * every instance carry its `service`, `version`, `zone` and `id` (and metadata) labels — what a
 * release's PromQL compares canary and stable by.
 */
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../../cli/command";
import { createEtcdClient, resolveEtcdOptions } from "../../registry/etcd/options";
import { cliEtcdEndpoints } from "../../cli/etcd-endpoints";
import { getLogger } from "../../runtime/logger";
import { registryInstances, startPrometheusSd } from "./sd-server";
import { prometheusTargets } from "./sd-targets";

const DEFAULT_LISTEN = "127.0.0.1:9402";

const USAGE = `usage: protomesh prometheus-sd [--listen HOST:PORT] [options]
       protomesh prometheus-sd --print [--service NAME]

Serves Prometheus HTTP service discovery from the etcd registry: GET /targets lists every
registered instance's /metrics address (its metrics_port) with the registry's labels —
namespace, service, id, version, zone and metadata keys — as target labels, so queries can
compare versions: sum by (version) (rate(grpc_server_handled_total{service="greeter"}[1m])).
Each request reads the registry; when etcd cannot answer it fails (503) and Prometheus keeps
the targets it had.

In prometheus.yml:

  scrape_configs:
    - job_name: protomesh
      http_sd_configs:
        - url: http://127.0.0.1:9402/targets        # ?service=NAME to narrow it
          refresh_interval: 15s

options:
  --listen HOST:PORT    where to serve (default ${DEFAULT_LISTEN})
  --print               print the targets JSON once and exit (file_sd_configs reads the same JSON)
  --service NAME        only this service (repeatable; with --print)
  --endpoints H:P[,…]   etcd (default ETCD_ENDPOINTS)
  --namespace NS        (default PROTOMESH_NAMESPACE, else "default")
  -h, --help            show this help
`;

const OPTIONS = {
  listen: { type: "string" },
  print: { type: "boolean" },
  service: { type: "string", multiple: true },
  endpoints: { type: "string" },
  namespace: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const prometheusSdCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    try {
      return await run(args, io);
    } catch (err) {
      if (err instanceof UsageError) return printUsageError(io, "prometheus-sd", err.message);
      io.err(`protomesh prometheus-sd: ${err instanceof Error ? err.message : String(err)}\n`);
      return ExitCode.failure;
    }
  },
};

/** `host:port` → parts; throws a usage error for anything else. */
function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]/]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--listen must be HOST:PORT (port 0–65535), got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2]!, port };
}

async function run(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    const parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    if (parsed.positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
    values = parsed.values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    io.out(USAGE);
    return ExitCode.ok;
  }
  if (values.print && values.listen !== undefined) throw new UsageError("give --print or --listen, not both");
  if (!values.print && values.service !== undefined) throw new UsageError("--service goes with --print (a server takes ?service=NAME in the URL)");
  const listen = parseListen(values.listen ?? DEFAULT_LISTEN);
  let resolved;
  try {
    resolved = resolveEtcdOptions({ endpoints: cliEtcdEndpoints(values.endpoints, io.env, "--endpoints"), namespace: values.namespace }, io.env);
  } catch (err) {
    // Not a mistake in the command line: one line, exit 1, as every command says it.
    throw new CliError((err as Error).message);
  }
  const client = createEtcdClient(resolved);
  try {
    if (values.print) {
      let found;
      try {
        found = await registryInstances(client, resolved.namespace);
      } catch (err) {
        throw new CliError(`cannot read the registry at ${resolved.endpoints.join(",")}: ${(err as Error).message}`);
      }
      const wanted = new Set(values.service ?? []);
      const { groups, skipped } = prometheusTargets(resolved.namespace, wanted.size === 0 ? found.instances : found.instances.filter((i) => wanted.has(i.service)));
      io.out(`${JSON.stringify(groups, null, 2)}\n`);
      for (const s of [...found.skipped, ...skipped.map((id) => `${id}: no metrics_port in its registration`)]) io.err(`left out: ${s}\n`);
      return ExitCode.ok;
    }
    const sd = await startPrometheusSd({ client, namespace: resolved.namespace, ...listen, logger: getLogger().child({ component: "prometheus-sd" }) }).catch((err: Error) => {
      throw new CliError(`cannot listen on ${values.listen ?? DEFAULT_LISTEN}: ${err.message}`);
    });
    io.err(`serving Prometheus service discovery for namespace ${JSON.stringify(resolved.namespace)} at ${sd.url}/targets; stop with Ctrl-C\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await sd.close();
    return ExitCode.ok;
  } finally {
    client.close();
  }
}
