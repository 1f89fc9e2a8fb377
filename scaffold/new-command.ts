/** `protomesh new <name>`: a service project that builds, tests, ships and is watched. */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, type CliIo, type Command } from "../cli/command";
import { packageVersion } from "../cli/package-root";
import { createProject } from "./create-project";
import { nameProblem } from "./names";

const USAGE = `usage: protomesh new <name> [--dir DIR] [--force]

Creates a gRPC service project called <name> in ./<name> (or DIR): a .proto, server, client,
tests against a real etcd, README, Dockerfile (multi-stage, non-root, health check),
Kubernetes manifests (Deployment with probes and graceful shutdown, Service, a development
etcd StatefulSet), Prometheus scrape configs and alert rules with their tests, a Grafana
dashboard, and a CI workflow (.github/workflows/ci.yml).

<name> is lower-case letters, digits and single dashes, starting with a letter, at most 40
characters (order-service): it becomes the npm package, the etcd service name (etcd:///<name>),
the Kubernetes names and the proto package (order_service.v1).

options:
  --dir DIR     where to create it (default ./<name>); it must be empty or absent
  --force       write into a directory that is not empty: files with the same names
                are replaced, others are kept
  -h, --help    show this help
`;

/** `protomesh new`. */
export const newCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let parsed: { values: { dir?: string; force?: boolean; help?: boolean }; positionals: string[] };
    try {
      parsed = parseArgs({ args, options: { dir: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
    } catch (err) {
      return usage(io, (err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }
    if (positionals.length === 0) return usage(io, "missing <name>");
    if (positionals.length > 1) return usage(io, `one name at a time (got ${positionals.map((p) => JSON.stringify(p)).join(", ")})`);
    const name = positionals[0]!;
    const problem = nameProblem(name);
    if (problem) return usage(io, `${JSON.stringify(name)} cannot name a project: ${problem}`);
    if (values.dir !== undefined && values.dir.trim() === "") return usage(io, "--dir is empty");

    const dir = path.resolve(io.cwd, values.dir ?? name);
    const relative = path.relative(io.cwd, dir);
    const shown = relative === "" ? "." : relative.startsWith("..") || path.isAbsolute(relative) ? dir : relative;
    try {
      const created = createProject({
        name,
        dir,
        force: values.force,
        protomeshVersion: packageVersion(),
        // Only once the directory is known to take it: a refusal is the one line of output.
        starting: () => io.out(`Creating ${name} in ${dir}\n`),
        progress: (line) => io.out(`${line}\n`),
      });
      const cd = shown === "." ? [] : [`  cd ${shown.includes(" ") ? JSON.stringify(shown) : shown}`];
      io.out(
        [
          "",
          `Created ${created.files.length} files${created.replaced.length > 0 ? ` (${created.replaced.length} replaced)` : ""}. Next steps:`,
          ...cd,
          "  npm install            # then commit package-lock.json (the Dockerfile and CI run npm ci)",
          "  npm test               # generate, compile, test against a real etcd (needs the etcd binary)",
          "  npx protomesh etcd     # a development etcd in another terminal; export its ETCD_ENDPOINTS",
          "  npm run build && npm start",
          `  npm run client -- Ada  # calls etcd:///${name}`,
          "",
          "Then: docker build, kubectl apply -k k8s/, monitoring/ for Prometheus and Grafana (see README.md).",
          "",
        ].join("\n"),
      );
      return ExitCode.ok;
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      io.err(`protomesh new: ${err.message}\n`);
      return ExitCode.failure;
    }
  },
};

function usage(io: CliIo, message: string): number {
  return printUsageError(io, "new", message);
}
