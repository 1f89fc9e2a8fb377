import { execFileSync, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, type CliIo, type Command } from "../../cli/command";
import { startEmbeddedEtcd } from "./embedded";

const USAGE = `usage: protomesh etcd [--port N] [--data-dir DIR]

Runs one etcd member on 127.0.0.1 for development and prints the
ETCD_ENDPOINTS to export in the terminals where your services run. It stays
up until Ctrl-C, then stops etcd (and removes its data unless --data-dir was
given).

Needs the etcd binary (Debian's etcd-server package, or ETCD_BIN=path). As
root on Debian it installs etcd-server with apt-get when it is missing.

Production is not this: run a 3- or 5-member etcd cluster on separate
machines, with TLS and a user per namespace (see docs/registry.md), and
give services its endpoints through ETCD_ENDPOINTS.

options:
  --port N          client port (default 2379; 0 picks a free one)
  --data-dir DIR    keep etcd's data in DIR across runs (default: a temporary
                    directory, removed on exit)
  -h, --help        show this help
`;

/** `protomesh etcd`: a local etcd member for development. */
export const etcdCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let values: { port?: string; "data-dir"?: string; help?: boolean };
    try {
      ({ values } = parseArgs({ args, options: { port: { type: "string" }, "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }));
    } catch (err) {
      return printUsageError(io, "etcd", err instanceof Error ? err.message : String(err));
    }
    if (values.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }
    const port = values.port === undefined ? 2379 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return printUsageError(io, "etcd", `--port must be a port number (0 for a free one), got "${values.port}"`);
    }
    try {
      const binary = ensureEtcd(io);
      if (port !== 0) await checkPortFree(port);
      const etcd = await startEmbeddedEtcd({ binary, clientPort: port === 0 ? undefined : port, dataDir: values["data-dir"] });
      const [endpoint] = etcd.endpoints;
      const where = values["data-dir"] === undefined ? "data in a temporary directory, removed on exit" : `data in ${values["data-dir"]}`;
      io.out(`etcd serving on ${endpoint} (${where}); Ctrl-C stops it. In your service's terminal:\nexport ETCD_ENDPOINTS=${endpoint}\n`);
      return await new Promise<number>((resolve) => {
        const stop = () => {
          clearInterval(watch);
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void etcd.stop().then(() => resolve(ExitCode.ok));
        };
        // The member does not hold the event loop open by itself; this check does, and notices a crash.
        const watch = setInterval(() => {
          if (etcd.members[0].running) return;
          clearInterval(watch);
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          io.err("protomesh etcd: etcd exited unexpectedly\n");
          void etcd.stop().then(() => resolve(ExitCode.failure));
        }, 500);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    } catch (err) {
      io.err(`protomesh etcd: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}\n`);
      return ExitCode.failure;
    }
  },
};

/** The etcd binary to run; installs Debian's etcd-server first when root with apt-get and it is missing. */
function ensureEtcd(io: CliIo): string {
  const named = io.env.ETCD_BIN ?? "etcd";
  if (has(named)) return named;
  if (io.env.ETCD_BIN) throw new CliError(`ETCD_BIN=${io.env.ETCD_BIN} is not an executable`);
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (isRoot && has("apt-get")) {
    io.err("protomesh etcd: installing Debian's etcd-server (apt-get)…\n");
    try {
      execFileSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null"], { stdio: ["ignore", "ignore", "pipe"] });
    } catch {
      throw new CliError("installing etcd-server failed. Run: apt-get install -y etcd-server");
    }
    if (has("etcd")) return "etcd";
  }
  throw new CliError("etcd is not installed. Run: sudo apt-get install -y etcd-server (or set ETCD_BIN to an etcd binary)");
}

function has(command: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", command], { stdio: "ignore" }).status === 0;
}

function checkPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) =>
      reject(new CliError(err.code === "EADDRINUSE" ? `port ${port} is in use (another etcd?): pass --port N, or --port 0 for a free one` : `cannot listen on 127.0.0.1:${port}: ${err.message}`)),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}
