/**
 * `protomesh health <target>`: grpc_health_probe's flags and exit codes (so an exec probe can
 * swap one for the other), plus `etcd:///service` targets that check every registered instance
 * and print a table.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { usageErrorText, type CliIo, type Command } from "../../cli/command";
import { etcdEndpointsOf, noEtcdEndpoints } from "../../cli/etcd-endpoints";
import { parseDuration } from "../../runtime/duration";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, probe, ProbeExit, type ProbeOptions, type ProbeResult } from "./probe";
import { probeService, formatTable } from "./probe-service";

const USAGE = `usage: protomesh health <target> [options]
       protomesh health -addr=<host:port> [options]     (grpc_health_probe's form)

Checks grpc.health.v1.Health and exits 0 when the answer is SERVING. <target> is
host:port, or etcd:///<service> to check every registered instance (ETCD_ENDPOINTS,
PROTOMESH_NAMESPACE) and print a table; then it exits 0 only if all are SERVING.

options (one or two dashes, "-flag value" or "-flag=value"):
  --addr HOST:PORT          the target, as grpc_health_probe takes it
  --service NAME            the service to check (default "": the whole server)
  --connect-timeout DUR     time to connect (default 1s)
  --rpc-timeout DUR         time for the Check call (default 1s)
  --user-agent TEXT         user-agent of the call (default grpc_health_probe)
  --rpc-header KEY:VALUE    metadata to send (repeatable)
  --tls                     use TLS
  --tls-ca-cert FILE        CA certificates to trust instead of the system roots
  --tls-client-cert FILE    client certificate
  --tls-client-key FILE     client key
  --tls-no-verify           use TLS without checking the server certificate (insecure)
  --tls-server-name NAME    name to check the server certificate against
  -v                        say what is checked
  -h, --help                show this help

exit codes (grpc_health_probe's):
  0 SERVING · 1 invalid arguments · 2 connection failed or timed out ·
  3 the RPC failed or timed out · 4 the answer is not SERVING
`;

const OPTIONS = {
  addr: { type: "string" },
  service: { type: "string" },
  "connect-timeout": { type: "string" },
  "rpc-timeout": { type: "string" },
  "user-agent": { type: "string" },
  "rpc-header": { type: "string", multiple: true },
  tls: { type: "boolean" },
  "tls-ca-cert": { type: "string" },
  "tls-client-cert": { type: "string" },
  "tls-client-key": { type: "string" },
  "tls-no-verify": { type: "boolean" },
  "tls-server-name": { type: "string" },
  v: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Go's flag package accepts `-name`; Node's parser wants `--name`. */
function goStyle(args: string[]): string[] {
  return args.map((a) => (/^-[a-z][a-z-]+(=.*)?$/.test(a) ? `-${a}` : a));
}

class HealthUsage extends Error {}

/** A TLS file that cannot be read: invalid arguments (exit 1), said in one line, as grpc_health_probe does. */
class HealthTlsFiles extends Error {}

function checkReadable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  try {
    readFileSync(file);
  } catch (err) {
    throw new HealthTlsFiles(`failed to initialize tls credentials: cannot read --${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parse(args: string[]): { target: string; options: ProbeOptions; verbose: boolean } | "help" {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: goStyle(args), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new HealthUsage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length > 1) throw new HealthUsage(`unexpected argument ${JSON.stringify(positionals[1])}`);
  const target = values.addr ?? positionals[0];
  if (values.addr !== undefined && positionals.length > 0) throw new HealthUsage("give the target once: either <target> or --addr");
  if (target === undefined || target.trim() === "") throw new HealthUsage("missing <target> (host:port or etcd:///service)");
  const duration = (flag: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      throw new HealthUsage(`--${flag}: ${(err as Error).message}`);
    }
    if (ms <= 0) throw new HealthUsage(`--${flag} must be greater than zero`);
    return ms;
  };
  const headers = (values["rpc-header"] ?? []).map((h): [string, string] => {
    const colon = h.indexOf(":");
    if (colon <= 0) throw new HealthUsage(`bad --rpc-header ${JSON.stringify(h)}: use key:value`);
    return [h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim()];
  });
  const tlsWanted = values.tls || values["tls-no-verify"] || values["tls-ca-cert"] !== undefined || values["tls-client-cert"] !== undefined || values["tls-client-key"] !== undefined || values["tls-server-name"] !== undefined;
  if (tlsWanted && !values.tls) throw new HealthUsage("the --tls-* flags need --tls");
  if (values["tls-no-verify"] && values["tls-ca-cert"] !== undefined) throw new HealthUsage("--tls-no-verify and --tls-ca-cert exclude each other");
  if ((values["tls-client-cert"] === undefined) !== (values["tls-client-key"] === undefined)) throw new HealthUsage("--tls-client-cert and --tls-client-key go together");
  for (const flag of ["tls-ca-cert", "tls-client-cert", "tls-client-key"] as const) checkReadable(flag, values[flag]);
  return {
    target: target.trim(),
    verbose: values.v === true,
    options: {
      service: values.service ?? "",
      connectTimeoutMs: duration("connect-timeout", values["connect-timeout"], DEFAULT_CONNECT_TIMEOUT_MS),
      rpcTimeoutMs: duration("rpc-timeout", values["rpc-timeout"], DEFAULT_RPC_TIMEOUT_MS),
      userAgent: values["user-agent"],
      headers,
      tls: values.tls
        ? { caCert: values["tls-ca-cert"], clientCert: values["tls-client-cert"], clientKey: values["tls-client-key"], noVerify: values["tls-no-verify"], serverName: values["tls-server-name"] }
        : undefined,
    },
  };
}

/** `protomesh health`. */
export const healthCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let request: ReturnType<typeof parse>;
    try {
      request = parse(args);
    } catch (err) {
      if (err instanceof HealthTlsFiles) {
        io.err(`protomesh health: ${err.message}\n`);
        return ProbeExit.usage;
      }
      if (!(err instanceof HealthUsage)) throw err;
      io.err(usageErrorText("health", err.message));
      return ProbeExit.usage;
    }
    if (request === "help") {
      io.out(USAGE);
      return 0;
    }
    const { target, options, verbose } = request;
    const etcdTarget = /^etcd:\/\/[^/]*\/(.*)$/i.exec(target);
    if (etcdTarget) {
      if (etcdEndpointsOf(undefined, io.env).length === 0) {
        io.err(`protomesh health: ${noEtcdEndpoints()}\n`);
        return ProbeExit.connectFailed;
      }
      const outcome = await probeService(etcdTarget[1]!, options, io.env);
      if (typeof outcome === "string") {
        io.err(`protomesh health: ${outcome}\n`);
        return ProbeExit.connectFailed;
      }
      io.out(formatTable(outcome.results));
      for (const s of outcome.skipped) io.err(`skipped unreadable registry entry ${s}\n`);
      return outcome.exit;
    }
    if (verbose) io.err(`establishing connection to ${target}, service ${JSON.stringify(options.service)}\n`);
    const result: ProbeResult = await probe(target, options);
    if (verbose) io.err(`time elapsed: ${Math.round(result.elapsedMs)}ms\n`);
    if (result.exit === ProbeExit.serving) io.out(`${result.message}\n`);
    else io.err(`${result.message}\n`);
    return result.exit;
  },
};
