/**
 * `protomesh console`: starts the admin console, or manages its users
 * (`protomesh console user add|remove|list`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../cli/command";
import { cliEtcdEndpoints } from "../cli/etcd-endpoints";
import { createEtcdClient, resolveEtcdOptions } from "../registry/etcd/options";
import { AuditLog } from "./audit/audit-log";
import { isRole, type Role } from "./auth/roles";
import { UserStore } from "./auth/users";
import { DEFAULT_CONSOLE_PORT, startConsole, type ConsoleOptions } from "./console";

const USAGE = `usage: protomesh console [--host HOST] [--port N] [--auth none|users] [--protos DIR]
                        [--jaeger URL] [--max-traces N] [--no-receiver]
                        [--gateway URL] [--coordinator TARGET]
       protomesh console user add NAME --role viewer|editor|admin
       protomesh console user remove NAME
       protomesh console user list

Serves the admin console: services and instances (live from etcd; drain,
weight), config (edit, diff, publish, history, rollback, gray), API docs with
"try it", traces (embedded OTLP/HTTP receiver at /v1/traces, or a Jaeger
query API) and the audit log. etcd comes from ETCD_ENDPOINTS (and
PROTOMESH_NAMESPACE).

Without sign-in the console binds loopback only; any other --host needs
--auth users and at least one user. "user add" reads the password from
PROTOMESH_CONSOLE_PASSWORD, else from the first line of standard input.

options:
  --host HOST       address to bind (default 127.0.0.1)
  --port N          port (default ${DEFAULT_CONSOLE_PORT}; 0 picks a free one)
  --auth MODE       none (loopback only) or users (default: none on loopback)
  --protos DIR      the project's protos, for config schemas and API docs
                    (default: the current directory when it has .proto files)
  --jaeger URL      also read traces from this Jaeger query API
  --max-traces N    traces the embedded receiver keeps (default 1000)
  --no-receiver     do not receive OTLP traces
  --gateway URL     the HTTP gateway (protomesh gateway) in front of the services:
                    the API page can then try methods over HTTP through it
  --coordinator T   the transaction coordinator (default etcd:///protomesh-tx)
  --role ROLE       with "user add": viewer, editor or admin
  -h, --help        show this help
`;

export const consoleCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let values: Record<string, string | boolean | undefined>;
    let positionals: string[];
    try {
      ({ values, positionals } = parseArgs({
        args,
        options: {
          host: { type: "string" },
          port: { type: "string" },
          auth: { type: "string" },
          protos: { type: "string" },
          jaeger: { type: "string" },
          "max-traces": { type: "string" },
          "no-receiver": { type: "boolean" },
          gateway: { type: "string" },
          coordinator: { type: "string" },
          role: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: true,
      }));
      if (values.help) {
        io.out(USAGE);
        return ExitCode.ok;
      }
      if (values.port !== undefined && !/^\d+$/.test(String(values.port))) throw new UsageError(`--port must be a number, got ${JSON.stringify(values.port)}`);
      if (values.auth !== undefined && values.auth !== "none" && values.auth !== "users") throw new UsageError(`--auth must be none or users`);
      if (values["max-traces"] !== undefined && !/^\d+$/.test(String(values["max-traces"]))) throw new UsageError("--max-traces must be a number");
      if (positionals.length > 0 && positionals[0] !== "user") throw new UsageError(`unknown verb ${JSON.stringify(positionals[0])}`);
    } catch (err) {
      return printUsageError(io, "console", err instanceof Error ? err.message : String(err));
    }
    try {
      if (positionals[0] === "user") return await userVerb(positionals.slice(1), values.role as string | undefined, io);
      return await serve(values, io);
    } catch (err) {
      if (err instanceof UsageError) return printUsageError(io, "console", err.message);
      if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
        io.err(`protomesh console: port ${values.port ?? DEFAULT_CONSOLE_PORT} is in use; pick another with --port\n`);
        return ExitCode.failure;
      }
      io.err(`protomesh console: ${err instanceof Error ? err.message : String(err)}\n`);
      return ExitCode.failure;
    }
  },
};

async function serve(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number> {
  const options: ConsoleOptions = {
    host: values.host as string | undefined,
    port: values.port === undefined ? DEFAULT_CONSOLE_PORT : Number(values.port),
    signIn: values.auth as ConsoleOptions["signIn"],
    endpoints: cliEtcdEndpoints(undefined, io.env),
    namespace: io.env.PROTOMESH_NAMESPACE,
    traces: {
      receiver: !values["no-receiver"],
      maxTraces: values["max-traces"] === undefined ? undefined : Number(values["max-traces"]),
      jaeger: values.jaeger as string | undefined,
    },
    gateway: values.gateway as string | undefined,
    transactions: values.coordinator === undefined ? undefined : { coordinator: values.coordinator as string },
  };
  const protosDir = values.protos === undefined ? undefined : path.resolve(io.cwd, String(values.protos));
  const candidate = protosDir ?? io.cwd;
  if (protosDir !== undefined || hasProtos(candidate)) {
    const { buildDescriptors } = require("../apidocs/descriptor-set") as typeof import("../apidocs/descriptor-set");
    try {
      options.protos = await buildDescriptors(candidate, io.env);
    } catch (err) {
      if (protosDir !== undefined) throw err;
      io.err(`protomesh console: not using the protos in ${candidate}: ${(err as Error).message}\n`);
    }
  }
  const running = await startConsole(options);
  io.out(`protomesh console: serving ${running.url} (${running.signIn === "none" ? "no sign-in, loopback only" : "sign-in required"}); Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await running.close();
  return ExitCode.ok;
}

async function userVerb(args: string[], role: string | undefined, io: CliIo): Promise<number> {
  const [verb, name] = args;
  // Usage mistakes are told before anything talks to etcd.
  if (verb !== "add" && verb !== "remove" && verb !== "list") {
    throw new UsageError(verb === undefined ? "user needs a verb: add, remove or list" : `unknown user verb ${JSON.stringify(verb)}: add, remove or list`);
  }
  if (verb === "list" ? args.length > 1 : args.length !== 2) throw new UsageError(verb === "list" ? "user list takes no NAME" : `user ${verb} takes one NAME`);
  if (verb === "add" && !isRole(role)) throw new UsageError("user add needs --role viewer|editor|admin");
  if (verb !== "add" && role !== undefined) throw new UsageError("--role goes with user add");
  const resolved = resolveEtcdOptions({ endpoints: cliEtcdEndpoints(undefined, io.env), namespace: io.env.PROTOMESH_NAMESPACE }, io.env);
  const client = createEtcdClient(resolved);
  const users = new UserStore(client, resolved.namespace, resolved.callTimeoutMs);
  const audit = new AuditLog(client, resolved.namespace, resolved.callTimeoutMs);
  const who = io.env.PROTOMESH_USER ?? `${safeUser()}@${os.hostname()}`;
  try {
    if (verb === "list") {
      for (const u of await users.list()) io.out(`${u.name}\t${u.role}\t${u.createdAt}\n`);
      return ExitCode.ok;
    }
    const userName = name!; // checked above
    if (verb === "add") {
      const password = io.env.PROTOMESH_CONSOLE_PASSWORD ?? readFirstLine();
      if (!password) throw new CliError("no password: set PROTOMESH_CONSOLE_PASSWORD or pipe it on standard input");
      const user = await users.put(userName, role as Role, password);
      await audit.record({ who, via: "cli", action: "user.add", target: userName, after: { name: userName, role } });
      io.out(`protomesh console: user ${user.name} (${user.role}) saved\n`);
      return ExitCode.ok;
    }
    if (!(await users.remove(userName))) throw new CliError(`no user ${userName}`);
    await audit.record({ who, via: "cli", action: "user.remove", target: userName });
    io.out(`protomesh console: user ${userName} removed\n`);
    return ExitCode.ok;
  } finally {
    client.close();
  }
}

function hasProtos(dir: string): boolean {
  return fs.existsSync(path.join(dir, "buf.yaml")) || fs.existsSync(path.join(dir, "proto"));
}

function readFirstLine(): string {
  try {
    return fs.readFileSync(0, "utf8").split(/\r?\n/)[0] ?? "";
  } catch {
    return "";
  }
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
}
