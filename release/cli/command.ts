/**
 * `protomesh release <verb>`: start, watch and steer releases stored in etcd, and run the
 * controller that drives them.
 */
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../../cli/command";
import { createEtcdClient, resolveEtcdOptions } from "../../registry/etcd/options";
import { cliEtcdEndpoints } from "../../cli/etcd-endpoints";
import { getLogger } from "../../runtime/logger";
import { listInstances } from "../instances";
import { newRelease, ReleaseCommandError, type Command as ReleaseVerb } from "../machine";
import { runCommand } from "../controller/apply";
import { ReleaseController } from "../controller/controller";
import { openTrafficStore } from "../../traffic/store";
import { ReleaseStateStore, StateConflictError } from "../controller/state-store";
import { isDone } from "../state";
import { formatRow, formatStatus } from "./format";
import { specFrom, START_HELP, START_OPTIONS } from "./start-options";

const USAGE = `usage: protomesh release <verb> [service] [options]

verbs:
  start <service> --canary L=V | --blue-green L=V [options]   begin a release
  status <service> [--json]     phase, step, weight, last measurements
  pause <service>               stop at the current step
  resume <service>              carry on (past a paused step or an inconclusive analysis)
  promote <service> [--full]    skip the current step; --full: all traffic to the canary now
  abort <service>               every call back to stable at once
  retry <service>               start an aborted or degraded release again from step 1
  undo <service>                put back the traffic rule from before the release
  list                          the release of every service
  history <service>             finished releases of a service
  controller                    drive releases (run one or more; they share the work safely)

start options:
${START_HELP}

common options:
  --endpoints H:P[,…]   etcd (default ETCD_ENDPOINTS)
  --namespace NS        (default PROTOMESH_NAMESPACE, else "default")
  --json                machine-readable output (status, list, history)
  -h, --help            show this help

The release advances only while a controller runs (\`protomesh release controller\`);
pause, resume, promote, abort, retry and undo take effect at once.
`;

const OPTIONS = {
  ...START_OPTIONS,
  endpoints: { type: "string" },
  namespace: { type: "string" },
  json: { type: "boolean" },
  full: { type: "boolean" },
  "lease-ttl": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const VERBS: Record<string, ReleaseVerb> = { pause: "pause", resume: "resume", abort: "abort", retry: "retry", undo: "undo" };

export const releaseCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    try {
      return await run(args, io);
    } catch (err) {
      if (err instanceof UsageError) return printUsageError(io, "release", err.message);
      if (err instanceof CliError || err instanceof ReleaseCommandError || err instanceof StateConflictError) {
        io.err(`protomesh release: ${err.message}\n`);
        return ExitCode.failure;
      }
      io.err(`protomesh release: ${err instanceof Error ? err.message : String(err)}\n`);
      return ExitCode.failure;
    }
  },
};

async function run(args: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [verb, service, ...extra] = positionals;
  if (values.help || verb === "help") {
    io.out(USAGE);
    return ExitCode.ok;
  }
  if (verb === undefined) throw new UsageError("missing <verb>");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (!["start", "status", "promote", "list", "history", "controller", ...Object.keys(VERBS)].includes(verb)) throw new UsageError(`unknown verb ${JSON.stringify(verb)}`);
  const needsService = verb !== "list" && verb !== "controller";
  if (needsService && service === undefined) throw new UsageError(`${verb} needs a <service>`);
  if (!needsService && service !== undefined) throw new UsageError(`${verb} takes no service`);

  let resolved;
  try {
    resolved = resolveEtcdOptions({ endpoints: cliEtcdEndpoints(values.endpoints, io.env, "--endpoints"), namespace: values.namespace }, io.env);
  } catch (err) {
    // Not a mistake in the command line: one line, as every command says it (no usage text).
    throw new CliError((err as Error).message);
  }
  const client = createEtcdClient(resolved);
  const namespace = resolved.namespace;
  const store = new ReleaseStateStore(client, namespace);
  try {
    switch (verb) {
      case "controller":
        return await controller(io, client, namespace, values["lease-ttl"]);
      case "list": {
        const { releases, unreadable } = await store.list();
        if (values.json) io.out(`${JSON.stringify(releases.map((r) => r.state))}\n`);
        else for (const r of releases) io.out(`${formatRow(r.state)}\n`);
        for (const u of unreadable) io.err(`skipped: ${u}\n`);
        return ExitCode.ok;
      }
      case "history": {
        const history = await store.history(service!);
        if (values.json) io.out(`${JSON.stringify(history)}\n`);
        else for (const s of history) io.out(`${formatRow(s)}\n`);
        return ExitCode.ok;
      }
      case "status": {
        const stored = await store.get(service!);
        if (!stored) throw new CliError(`${service} has no release in namespace ${JSON.stringify(namespace)}`);
        io.out(values.json ? `${JSON.stringify(stored.state)}\n` : formatStatus(stored.state, Date.now()));
        return ExitCode.ok;
      }
      case "start": {
        const spec = await specFrom(service!, values, io.cwd, async (canary) => {
          const { instances } = await listInstances(client, namespace, service!);
          const others = new Set(instances.filter((i) => !Object.entries(canary).every(([k, v]) => (k === "version" ? i.version : i.metadata[k]) === v)).map((i) => i.version));
          if (others.size !== 1 || [...others][0] === "") throw new UsageError(`cannot tell the stable side (running versions besides the canary: ${[...others].join(", ") || "none"}); pass --stable version=…`);
          return { version: [...others][0]! };
        });
        const existing = await store.get(service!);
        if (existing && !isDone(existing.state.phase)) throw new CliError(`${service} already has a release in progress (${existing.state.id}, ${existing.state.phase}); abort it or wait`);
        const before = await openTrafficStore({ client, namespace, service: service! }).current();
        const state = newRelease(spec, before?.value ?? null, Date.now());
        await store.put(state, existing?.modRevision ?? "0");
        io.out(`started release ${state.id} of ${service}: ${spec.steps.length} steps; a controller drives it (protomesh release controller)\n`);
        return ExitCode.ok;
      }
      default: {
        const command: ReleaseVerb = verb === "promote" ? (values.full ? "promote-full" : "promote") : VERBS[verb]!;
        const state = await runCommand(store, openTrafficStore({ client, namespace, service: service! }), service!, command);
        io.out(`${service}: ${state.phase}, ${state.weight} % canary: ${state.message}\n`);
        return ExitCode.ok;
      }
    }
  } finally {
    client.close();
  }
}

async function controller(io: CliIo, client: ReturnType<typeof createEtcdClient>, namespace: string, ttl: string | undefined): Promise<number> {
  const leaseTtlSeconds = ttl === undefined ? undefined : Number(ttl);
  if (leaseTtlSeconds !== undefined && !(Number.isInteger(leaseTtlSeconds) && leaseTtlSeconds >= 2)) throw new UsageError("--lease-ttl must be an integer number of seconds ≥ 2");
  const c = new ReleaseController({ client, namespace, leaseTtlSeconds, logger: getLogger().child({ component: "release.controller" }) });
  await c.start();
  io.err(`release controller ${c.id} driving namespace ${JSON.stringify(namespace)}; stop with Ctrl-C\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await c.stop();
  return ExitCode.ok;
}
