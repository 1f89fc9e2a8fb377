/** `protomesh gateway`: run the HTTP/JSON gateway, show its routes, manage its policy and API keys. */
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../../cli/command";
import { cliEtcdEndpoints } from "../../cli/etcd-endpoints";
import { ConfigError } from "../../config/errors";
import { PolicyValidationError } from "../policy";
import { RouteConfigError } from "../routes";
import { keysCommand } from "./keys-commands";
import { policyCommand } from "./policy-commands";
import { routesCommand, runCommand } from "./run-command";

export const USAGE = `usage: protomesh gateway [run] [options]
       protomesh gateway routes [options]
       protomesh gateway policy get|set|apply|history|rollback [options]
       protomesh gateway keys create|revoke|list [options]

commands:
  run (default)            serve HTTP/JSON in front of the services (routes from google.api.http)
  routes                   print the route table the gateway derives (method, template, target)
  policy get               print the policy in force (--version N: that version; --json)
  policy set JSON          replace the policy with the JSON document given inline
  policy apply -f FILE     replace the policy with FILE (.json, .yaml, .yml)
  policy history           list versions, newest first (--limit N)
  policy rollback VERSION  make a copy of VERSION the policy in force
  keys create NAME         create an API key (printed once; only its hash is stored) (--scopes a,b)
  keys revoke ID           delete an API key
  keys list                list API keys (ids, names, scopes; never the keys)

options:
  --port N                 HTTP port (default 8080; 0 picks a free one)
  --host ADDR              interface to listen on (default 127.0.0.1)
  --etcd LIST              etcd endpoints, comma-separated (default ETCD_ENDPOINTS)
  --namespace NS           default PROTOMESH_NAMESPACE, else "default"
  --name NAME              gateway name: gateways sharing it share policy and keys (default "default")
  --env NAME               config-center environment of the policy (default PROTOMESH_ENV, else "default")
  --config FILE            start-up defaults (YAML or JSON with the same keys as these options)
  --descriptor-set FILE    routes from a FileDescriptorSet (buf build -o FILE) ...
  --target TARGET          ... served at TARGET (default etcd:///<service>: give it for a set)
  --no-discover            do not derive routes from the services registered in etcd
  --services LIST          discover only these registry names
  --unannotated            also route POST /package.Service/Method for methods without annotations
  --redis URL              Redis for cluster-wide rate limits (redis://127.0.0.1:6379)
  --tls-cert FILE          serve HTTPS with this certificate ...
  --tls-key FILE           ... and key
  --method-override        honour X-HTTP-Method-Override (off: a filter-bypass risk)
  --balancer NAME          round_robin, p2c, least_request or consistent_hash over each service's
                           instances (default: grpc-js round_robin)
  --outlier-detection      circuit breaking: eject an instance failing half of 20+ calls a second
                           (a client's outlierDetection defaults; settings in --config)
  --metrics-port N         serve Prometheus /metrics on this port (0 picks one; printed at start)
  --no-access-log          do not print the access log (one JSON line per request, on stdout)
  -f, --file FILE          policy file for "policy apply"
  --comment TEXT           why: recorded with a policy version
  --scopes LIST            scopes granted to a new API key
  --limit N                how many versions "policy history" lists (default 20)
  --version N              a policy version for "policy get"
  --json                   machine-readable output
  -h, --help               show this help

Tracing: spans are exported when OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
PROTOMESH_TRACING_ENDPOINT or a traces exporter (OTEL_TRACES_EXPORTER, PROTOMESH_TRACING_EXPORTER:
otlp, jaeger, console) is set; service name OTEL_SERVICE_NAME, else gateway.<name>.

Policy: the config of app "gateway.<name>" in the config center
(/protomesh/<ns>/config/<env>/gateway.<name>/…); keys: /protomesh/<ns>/gateway/<name>/keys/<id>.
`;

export interface GatewayFlags {
  port?: string;
  host?: string;
  etcd?: string;
  namespace?: string;
  name?: string;
  env?: string;
  config?: string;
  "descriptor-set"?: string;
  target?: string;
  "no-discover"?: boolean;
  services?: string;
  unannotated?: boolean;
  redis?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  "method-override"?: boolean;
  balancer?: string;
  "outlier-detection"?: boolean;
  "metrics-port"?: string;
  "no-access-log"?: boolean;
  file?: string;
  comment?: string;
  scopes?: string;
  limit?: string;
  version?: string;
  json?: boolean;
  help?: boolean;
}

type Handler = (flags: GatewayFlags, args: string[], io: CliIo) => Promise<number>;

const VERBS: Record<string, Handler> = {
  run: runCommand,
  routes: routesCommand,
  policy: policyCommand,
  keys: keysCommand,
};

export const gatewayCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    const first = args[0];
    const verb = first === undefined || first.startsWith("-") ? "run" : first;
    const rest = first === undefined || first.startsWith("-") ? args : args.slice(1);
    if (verb === "help") {
      io.out(USAGE);
      return ExitCode.ok;
    }
    const handler = Object.hasOwn(VERBS, verb) ? VERBS[verb] : undefined;
    if (!handler) return usageError(io, `unknown command "${verb}"`);
    let flags: GatewayFlags;
    let positionals: string[];
    try {
      const parsed = parseArgs({
        args: rest,
        options: {
          port: { type: "string" },
          host: { type: "string" },
          etcd: { type: "string" },
          namespace: { type: "string" },
          name: { type: "string" },
          env: { type: "string" },
          config: { type: "string" },
          "descriptor-set": { type: "string" },
          target: { type: "string" },
          "no-discover": { type: "boolean" },
          services: { type: "string" },
          unannotated: { type: "boolean" },
          redis: { type: "string" },
          "tls-cert": { type: "string" },
          "tls-key": { type: "string" },
          "method-override": { type: "boolean" },
          balancer: { type: "string" },
          "outlier-detection": { type: "boolean" },
          "metrics-port": { type: "string" },
          "no-access-log": { type: "boolean" },
          file: { type: "string", short: "f" },
          comment: { type: "string" },
          scopes: { type: "string" },
          limit: { type: "string" },
          version: { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: true,
      });
      flags = parsed.values as GatewayFlags;
      positionals = parsed.positionals;
    } catch (err) {
      return usageError(io, (err as Error).message);
    }
    if (flags.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }
    try {
      return await handler(flags, positionals, io);
    } catch (err) {
      if (err instanceof UsageError) return usageError(io, err.message);
      if (err instanceof CliError || err instanceof ConfigError || err instanceof PolicyValidationError || err instanceof RouteConfigError) {
        io.err(`protomesh gateway ${verb}: ${err.message}\n`);
        return ExitCode.failure;
      }
      if (err instanceof Error && /etcd|UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|no etcd endpoints/i.test(`${err.name} ${err.message}`)) {
        io.err(`protomesh gateway ${verb}: cannot talk to etcd (${err.message}); check --etcd or ETCD_ENDPOINTS\n`);
        return ExitCode.failure;
      }
      throw err;
    }
  },
};

function usageError(io: CliIo, message: string): number {
  return printUsageError(io, "gateway", message);
}

/** Etcd options from the flags (and the environment). */
export function etcdFlags(flags: GatewayFlags, io: CliIo): { endpoints?: string[]; namespace?: string } {
  return { endpoints: cliEtcdEndpoints(flags.etcd, io.env, "--etcd"), namespace: flags.namespace ?? io.env.PROTOMESH_NAMESPACE };
}
