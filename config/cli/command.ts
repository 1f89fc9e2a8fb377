/** `protomesh config`: the config center from the command line. */
import { withoutEmptyResolutionNote } from "../../runtime/errors";
import { CliError, ExitCode, UsageError, type CliIo, type Command } from "../../cli/command";
import { parseVerbLine, usageError as verbUsageError } from "../../cli/verbs";
import { ConfigError } from "../errors";
import { CliContext, type Flags } from "./context";
import { diffCommand, getCommand, historyCommand, watchCommand } from "./read-commands";
import { grayCommand, importCommand, rollbackCommand, setCommand } from "./write-commands";

const USAGE = `usage: protomesh config <command> --app NAME --env NAME [options]

commands:
  get                         print the current config as JSON (--version N: that
                              version; --labels k=v,…: what such an instance runs)
  set PATH=VALUE…             change fields of the current config, as a new version
                              (rateLimit.burst=10  blockedNames='["a","b"]'  --unset PATH)
  import FILE                 replace the config with FILE (.json, .yaml/.yml, .properties),
                              after checking every field against the schema
  history                     list versions, newest first (--limit N, default 20)
  rollback VERSION            make a copy of VERSION the current version
  watch                       print the config in force, then each change (--labels, --json)
  diff FROM [TO]              field differences; each side is a version number,
                              "current", "gray" or a file (TO defaults to current)
  gray start FILE|PATH=VALUE… --match k=v,…
                              a new version for instances whose labels match only
  gray status|promote|drop    show it; give it to everyone; end it

options:
  --app NAME               the application (default PROTOMESH_APP)
  --env NAME               the environment (default PROTOMESH_ENV)
  --namespace NS           default PROTOMESH_NAMESPACE, else "default"
  --endpoints LIST         etcd endpoints, comma-separated (default ETCD_ENDPOINTS)
  --schema TYPE            the config's proto message, e.g. examples.greeter.v1.GreeterConfig
                           (default: the type recorded with the latest version)
  --protos DIR             compile the schema from the .proto files under DIR with buf
                           (default: the current directory; as protomesh gen does, its
                           buf.yaml modules, else proto/, never node_modules)
  --descriptor-set FILE    read the schema from a FileDescriptorSet instead
                           (buf build --as-file-descriptor-set -o FILE)
  --comment TEXT           why: recorded with the new version
  --author NAME            who (default PROTOMESH_USER, else user@host)
  --expect N               write only if N is still the current version (0: none yet)
  --dry-run                check and show the change; write nothing
  --json                   machine-readable output (get, history, watch, gray status)
  --format FORMAT          json, yaml or properties, when a file name does not say
  -h, --help               show this help

Keys: /protomesh/<namespace>/config/<env>/<app>/{current,gray,versions/NNNNNNNNNN}
`;

type Handler = (ctx: CliContext, args: string[]) => Promise<number>;

const COMMON: (keyof Flags)[] = ["app", "env", "namespace", "endpoints", "help"];
const SCHEMA: (keyof Flags)[] = ["schema", "protos", "descriptor-set"];
const WRITE: (keyof Flags)[] = ["comment", "author", "expect", "dry-run"];

const SUBCOMMANDS: Record<string, { run: Handler; flags: (keyof Flags)[] }> = {
  get: { run: getCommand, flags: ["version", "labels", "json"] },
  set: { run: setCommand, flags: [...SCHEMA, ...WRITE, "unset"] },
  import: { run: importCommand, flags: [...SCHEMA, ...WRITE, "format"] },
  history: { run: historyCommand, flags: ["limit", "json"] },
  rollback: { run: rollbackCommand, flags: [...SCHEMA, ...WRITE] },
  watch: { run: watchCommand, flags: [...SCHEMA, "labels", "json"] },
  diff: { run: diffCommand, flags: [...SCHEMA, "format"] },
  gray: { run: grayCommand, flags: [...SCHEMA, ...WRITE, "match", "unset", "format", "json"] },
};

/** Every flag of every verb (each verb takes COMMON and the ones its SUBCOMMANDS entry names). */
const OPTIONS = {
  app: { type: "string" },
  env: { type: "string" },
  namespace: { type: "string" },
  endpoints: { type: "string" },
  schema: { type: "string" },
  protos: { type: "string" },
  "descriptor-set": { type: "string" },
  comment: { type: "string" },
  author: { type: "string" },
  expect: { type: "string" },
  "dry-run": { type: "boolean" },
  json: { type: "boolean" },
  version: { type: "string" },
  labels: { type: "string" },
  limit: { type: "string" },
  format: { type: "string" },
  match: { type: "string" },
  unset: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

export const configCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    const line = parseVerbLine<Flags>({ command: "config", usage: USAGE, verbs: SUBCOMMANDS, options: OPTIONS, common: COMMON }, args, io);
    if (typeof line === "number") return line;
    const { verb: name, flags, positionals } = line;
    const sub = SUBCOMMANDS[name]!;

    const ctx = new CliContext(io, flags);
    try {
      return await sub.run(ctx, positionals);
    } catch (err) {
      if (err instanceof UsageError) return usageError(io, err.message);
      if (err instanceof CliError || err instanceof ConfigError) {
        io.err(`protomesh config ${name}: ${err.message}\n`);
        return ExitCode.failure;
      }
      if (isEtcdError(err)) {
        io.err(`protomesh config ${name}: cannot talk to etcd (${withoutEmptyResolutionNote((err as Error).message)}); check --endpoints or ETCD_ENDPOINTS\n`);
        return ExitCode.failure;
      }
      throw err;
    } finally {
      ctx.close();
    }
  },
};

function usageError(io: CliIo, message: string): number {
  return verbUsageError({ command: "config" }, io, message);
}

function isEtcdError(err: unknown): boolean {
  return err instanceof Error && (/^(GRPC|Etcd)/.test(err.name) || /etcd|UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED/i.test(err.message));
}
