import { ExitCode, type CliIo, type Command } from "./command";
import { packageVersion } from "./package-root";

/**
 * The `protomesh` command line. Each command lives in its own module, loaded
 * only when it runs, and is listed here once: adding a command is adding a line.
 * (`require`, not `import()`: the sources also run through tsx's CommonJS hook.)
 */
const COMMANDS: Record<string, { readonly summary: string; readonly load: () => Command }> = {
  gen: { summary: "generate TypeScript from .proto files (ts-proto + protomesh, through buf)", load: () => (require("../codegen/gen-command") as typeof import("../codegen/gen-command")).genCommand },
  config: { summary: "read, write, version and gray-release app config in etcd", load: () => (require("../config/cli/command") as typeof import("../config/cli/command")).configCommand },
  docs: { summary: "write Markdown and HTML API docs from the .proto files; --serve to try calls", load: () => (require("../apidocs/docs-command") as typeof import("../apidocs/docs-command")).docsCommand },
  ls: { summary: "list a server's services or a service's methods (gRPC reflection)", load: () => (require("../explorer/ls-command") as typeof import("../explorer/ls-command")).lsCommand },
  describe: { summary: "print services, methods and messages as .proto source (gRPC reflection)", load: () => (require("../explorer/describe-command") as typeof import("../explorer/describe-command")).describeCommand },
  call: { summary: "call a method with JSON, streams as newline-delimited JSON (gRPC reflection)", load: () => (require("../explorer/call-command") as typeof import("../explorer/call-command")).callCommand },
  health: { summary: "check grpc.health.v1 of an address or every instance of etcd:///service (grpc_health_probe's flags and exit codes)", load: () => (require("../release/health/health-command") as typeof import("../release/health/health-command")).healthCommand },
  release: { summary: "canary and blue-green releases: start, status, pause, resume, promote, abort, retry, undo, list, history, controller", load: () => (require("../release/cli/command") as typeof import("../release/cli/command")).releaseCommand },
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
    io.err(`protomesh: unknown command "${first}"\n\n${usage()}`);
    return ExitCode.usage;
  }
  return entry.load().run(rest, io);
}

/** The real process: its cwd, environment, stdout and stderr. */
export function processIo(): CliIo {
  return {
    cwd: process.cwd(),
    env: process.env,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}
