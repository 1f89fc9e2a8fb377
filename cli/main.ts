import { ExitCode, printUsageError, UsageError, type CliIo, type Command } from "./command";
import { packageVersion } from "./package-root";

/**
 * The `protomesh` command line. Each command lives in its own module, loaded
 * only when it runs, and is listed here once: adding a command is adding a line.
 * (`require`, not `import()`: the sources also run through tsx's CommonJS hook.)
 */
const COMMANDS: Record<string, { readonly summary: string; readonly load: () => Command; readonly quietLogLevel?: "warn" }> = {
  gen: { summary: "generate TypeScript from .proto files (ts-proto + protomesh, through buf)", load: () => (require("../codegen/gen-command") as typeof import("../codegen/gen-command")).genCommand },
  config: { summary: "read, write, version and gray-release app config in etcd", load: () => (require("../config/cli/command") as typeof import("../config/cli/command")).configCommand },
  docs: { summary: "write Markdown and HTML API docs from the .proto files; --serve to try calls", load: () => (require("../apidocs/docs-command") as typeof import("../apidocs/docs-command")).docsCommand },
  ls: { summary: "list a server's services or a service's methods (gRPC reflection)", load: () => (require("../explorer/ls-command") as typeof import("../explorer/ls-command")).lsCommand },
  describe: { summary: "print services, methods and messages as .proto source (gRPC reflection)", load: () => (require("../explorer/describe-command") as typeof import("../explorer/describe-command")).describeCommand },
  etcd: { summary: "run a local etcd member for development and print its ETCD_ENDPOINTS", load: () => (require("../registry/etcd/etcd-command") as typeof import("../registry/etcd/etcd-command")).etcdCommand },
  // A gateway's warnings (an upstream failing, Redis or etcd out of reach) are its operator's signal, as a coordinator's.
  gateway: { summary: "HTTP/JSON gateway from google.api.http; its routes, policy (etcd) and API keys", load: () => (require("../gateway/cli/command") as typeof import("../gateway/cli/command")).gatewayCommand, quietLogLevel: "warn" },
  call: { summary: "call a method with JSON, streams as newline-delimited JSON (gRPC reflection)", load: () => (require("../explorer/call-command") as typeof import("../explorer/call-command")).callCommand },
  traffic: { summary: "traffic rules in etcd: subsets by label, weights, request matches; get, apply, history, rollback", load: () => (require("../traffic/cli/command") as typeof import("../traffic/cli/command")).trafficCommand },
  health: { summary: "check grpc.health.v1 of an address or every instance of etcd:///service (grpc_health_probe's flags and exit codes)", load: () => (require("../release/health/health-command") as typeof import("../release/health/health-command")).healthCommand },
  release: { summary: "canary and blue-green releases: start, status, pause, resume, promote, abort, retry, undo, list, history, controller", load: () => (require("../release/cli/command") as typeof import("../release/cli/command")).releaseCommand },
  "prometheus-sd": { summary: "Prometheus HTTP service discovery from the etcd registry (targets labelled service, version, zone, id)", load: () => (require("../release/prometheus/sd-command") as typeof import("../release/prometheus/sd-command")).prometheusSdCommand },
  // A coordinator's warnings (alerts, its store unreachable) are its operator's main signal: printed without --verbose.
  "tx-server": { summary: "run a distributed-transaction coordinator (TCC, saga, messages, notifications)", load: () => (require("../transaction/cli/tx-server-command") as typeof import("../transaction/cli/tx-server-command")).txServerCommand, quietLogLevel: "warn" },
  tx: { summary: "list, show, retry or stop distributed transactions", load: () => (require("../transaction/cli/tx-command") as typeof import("../transaction/cli/tx-command")).txCommand },
  new: { summary: "create a service project: proto, server, client, tests, Dockerfile, Kubernetes, Prometheus, Grafana, CI", load: () => (require("../scaffold/new-command") as typeof import("../scaffold/new-command")).newCommand },
  console: { summary: "serve the admin console (services, config, API, traces, audit); manage its users", load: () => (require("../console/console-command") as typeof import("../console/console-command")).consoleCommand },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "usage: protomesh <command> [options]",
    "",
    "commands:",
    ...lines,
    "",
    "options:",
    "  -h, --help     show this help (or a command's: protomesh <command> --help)",
    "      --version  print protomesh's version",
    "      --verbose  also print the framework's log lines (JSON, to stderr; or set PROTOMESH_LOG_LEVEL)",
    "",
  ].join("\n");
}

/** Runs `protomesh …` with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    (first === undefined ? io.err : io.out)(usage());
    return first === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (first === "--version" || first === "-v") {
    io.out(`protomesh ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  const entry = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!entry) {
    return printUsageError(io, "", `unknown command "${first}"`);
  }
  try {
    return await entry.load().run(rest, io);
  } catch (err) {
    // A usage mistake the command did not print itself is printed the way every command does.
    if (err instanceof UsageError) return printUsageError(io, first, err.message);
    // What a command did not word itself (a file it could not write, a port in use) still gets
    // one line naming the command, and exit code 1; the stack goes to the log (--verbose).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { getLogger } = require("../runtime/logger") as typeof import("../runtime/logger");
    getLogger().debug("command failed", { command: first, err });
    io.err(`protomesh ${first}: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.failure;
  }
}

/**
 * A command speaks in one-line messages. The framework's own log lines (JSON, with stacks)
 * reach stderr only when asked for: `--verbose` (anywhere on the line) or PROTOMESH_LOG_LEVEL.
 * A long-running server whose warnings are what its operator watches (`tx-server`, `gateway`) prints
 * warnings and errors without being asked. Call once, before `main`; returns the arguments
 * without `--verbose`.
 */
export function setUpCliLogging(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const verbose = argv.includes("--verbose");
  const args = argv.filter((a) => a !== "--verbose");
  const command = args[0] !== undefined && Object.hasOwn(COMMANDS, args[0]) ? COMMANDS[args[0]] : undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createJsonLogger, setLogger } = require("../runtime/logger") as typeof import("../runtime/logger");
  if (!env.PROTOMESH_LOG_LEVEL) setLogger(createJsonLogger({ level: verbose ? "debug" : (command?.quietLogLevel ?? "silent") }));
  return args;
}

let quietOnClosedPipe = false;

/**
 * A reader that goes away (`protomesh tx list | head -3`, `protomesh traffic watch … | head`)
 * ends the command quietly, as it ends `ls` or `cat`; without a handler Node throws EPIPE from the
 * next write, with a stack.
 */
function exitQuietlyOnClosedPipe(): void {
  if (quietOnClosedPipe) return;
  quietOnClosedPipe = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
}

/** The real process: its cwd, environment, stdout and stderr. */
export function processIo(): CliIo {
  exitQuietlyOnClosedPipe();
  return {
    cwd: process.cwd(),
    env: process.env,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}
