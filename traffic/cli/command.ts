/** `protomesh traffic`: services' traffic rules in etcd from the command line. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { stringify } from "yaml";
import { CliError, ExitCode, UsageError, type CliIo, type Command } from "../../cli/command";
import { parseVerbLine, usageError as verbUsageError } from "../../cli/verbs";
import { cliEtcdEndpoints } from "../../cli/etcd-endpoints";
import { ConflictError } from "../../config/errors";
import { diffConfig, formatDiff } from "../../config/diff";
import { openEtcdRegistry } from "./registry";
import { canaryRule } from "../../runtime/balancing/rule-builders";
import { validateTrafficRule } from "../../runtime/balancing/rule-compile";
import { TrafficRuleError } from "../../runtime/balancing/rule-errors";
import type { Logger, LogFields } from "../../runtime/logger";
import { parseRuleText } from "../rule-text";
import { openTrafficStore, TrafficStoreError, type TrafficStore, type TrafficVersion } from "../store";

const USAGE = `usage: protomesh traffic <command> SERVICE [options]

commands:
  get SERVICE                 print the rule in force (--version N: that version)
  apply SERVICE -f FILE       validate FILE (YAML or JSON; - for stdin) and put it in force
  set SERVICE --stable k=v --canary k=v --weight N
                              a stable/canary split by labels (--sticky-header H,
                              --fallback rest|fail); weight 0 sends everything to stable
  check -f FILE               validate a rule file; write nothing
  history SERVICE             list versions, newest first (--limit N, default 20)
  rollback SERVICE VERSION    put VERSION's rule back in force, as a new version
  diff SERVICE FROM [TO]      field differences; each side is a version number,
                              "current" or a file (TO defaults to current)
  watch SERVICE               print the rule in force, then each change (--count N: stop after N)
  remove SERVICE              take the rule out of force (history stays)

options:
  -f, --file FILE          the rule file (apply, check, diff)
  --namespace NS           default PROTOMESH_NAMESPACE, else "default"
  --endpoints LIST         etcd endpoints, comma-separated (default ETCD_ENDPOINTS)
  --comment TEXT           why: recorded with the new version
  --author NAME            who (default PROTOMESH_USER, else user@host)
  --expect N               write only if N is still the version in force (0: none yet)
  --dry-run                validate and show the change; write nothing
  --json                   JSON output (get, history, watch); default YAML for get
  -h, --help               show this help

Exit codes: 0 ok, 1 failed (invalid rule, conflict, etcd), 2 usage.
Keys: /protomesh/<namespace>/traffic/<service> (in force), …/<service>/versions/NNNNNNNNNN
Rule reference: docs/traffic.md
`;

interface Flags {
  file?: string;
  namespace?: string;
  endpoints?: string;
  comment?: string;
  author?: string;
  expect?: string;
  "dry-run"?: boolean;
  json?: boolean;
  version?: string;
  limit?: string;
  count?: string;
  stable?: string;
  canary?: string;
  weight?: string;
  "sticky-header"?: string;
  fallback?: string;
  help?: boolean;
}

type Ctx = { io: CliIo; flags: Flags; store: (service: string) => TrafficStore; logger: Logger };
type Handler = (ctx: Ctx, args: string[]) => Promise<number>;

const CONNECT: (keyof Flags)[] = ["namespace", "endpoints"];
const WRITE: (keyof Flags)[] = [...CONNECT, "comment", "author", "expect", "dry-run"];

const SUBCOMMANDS: Record<string, { run: Handler; flags: (keyof Flags)[] }> = {
  get: { run: getCommand, flags: [...CONNECT, "version", "json"] },
  apply: { run: applyCommand, flags: [...WRITE, "file"] },
  set: { run: setCommand, flags: [...WRITE, "stable", "canary", "weight", "sticky-header", "fallback"] },
  check: { run: checkCommand, flags: ["file"] },
  history: { run: historyCommand, flags: [...CONNECT, "limit", "json"] },
  rollback: { run: rollbackCommand, flags: WRITE },
  diff: { run: diffCommand, flags: [...CONNECT, "file"] },
  watch: { run: watchCommand, flags: [...CONNECT, "json", "count"] },
  remove: { run: removeCommand, flags: [...CONNECT, "expect"] },
};

/** Every flag of every verb (each verb takes the ones its SUBCOMMANDS entry names). */
const OPTIONS = {
  file: { type: "string", short: "f" },
  namespace: { type: "string" },
  endpoints: { type: "string" },
  comment: { type: "string" },
  author: { type: "string" },
  expect: { type: "string" },
  "dry-run": { type: "boolean" },
  json: { type: "boolean" },
  version: { type: "string" },
  limit: { type: "string" },
  count: { type: "string" },
  stable: { type: "string" },
  canary: { type: "string" },
  weight: { type: "string" },
  "sticky-header": { type: "string" },
  fallback: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const trafficCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    const line = parseVerbLine<Flags>({ command: "traffic", usage: USAGE, verbs: SUBCOMMANDS, options: OPTIONS }, args, io);
    if (typeof line === "number") return line;
    const { verb: name, flags, positionals } = line;
    const sub = SUBCOMMANDS[name]!;
    const stores: TrafficStore[] = [];
    const logger = plainLogger(io);
    const ctx: Ctx = {
      io,
      flags,
      logger,
      store: (service) => {
        try {
          const store = openTrafficStore({ service, namespace: flags.namespace, endpoints: cliEtcdEndpoints(flags.endpoints, io.env, "--endpoints"), author: flags.author ?? io.env.PROTOMESH_USER, logger });
          stores.push(store);
          return store;
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      },
    };
    try {
      return await sub.run(ctx, positionals);
    } catch (err) {
      if (err instanceof UsageError) return usageError(io, err.message);
      if (err instanceof TrafficRuleError) {
        io.err(`protomesh traffic ${name}: invalid rule: ${err.problems.map((p) => `${p.path || "rule"}: ${p.message}`).join("\n  ")}\n`);
        return ExitCode.failure;
      }
      if (err instanceof CliError || err instanceof TrafficStoreError || err instanceof ConflictError) {
        io.err(`protomesh traffic ${name}: ${err.message}\n`);
        return ExitCode.failure;
      }
      if (err instanceof Error && (/^(GRPC|Etcd)/.test(err.name) || /etcd|UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED/i.test(err.message))) {
        io.err(`protomesh traffic ${name}: cannot talk to etcd (${err.message}); check --endpoints or ETCD_ENDPOINTS\n`);
        return ExitCode.failure;
      }
      throw err;
    } finally {
      for (const s of stores) s.close();
    }
  },
};

function usageError(io: CliIo, message: string): number {
  return verbUsageError({ command: "traffic" }, io, message);
}

function one(args: string[], what: string, extra = 0): string {
  if (args.length < 1 || args.length > 1 + extra) throw new UsageError(`${what}`);
  return args[0];
}

async function getCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "get takes one SERVICE");
  const store = ctx.store(service);
  const record = ctx.flags.version !== undefined ? await store.get(wholeNumber(ctx.flags.version, "--version")) : await store.current();
  if (!record) throw new CliError(`${service} has no traffic rule in force (every instance serves every call)`);
  if (ctx.flags.json) out(ctx, JSON.stringify(record, null, 2));
  else {
    ctx.io.err(`# ${describe(record)}\n`);
    out(ctx, stringify(record.value));
  }
  return ExitCode.ok;
}

function readRule(ctx: Ctx, file: string | undefined): { rule: unknown; source: string } {
  if (file === undefined) throw new UsageError("-f FILE is required (a YAML or JSON rule; - reads standard input)");
  const source = file === "-" ? "standard input" : file;
  let text: string;
  try {
    text = file === "-" ? readFileSync(0, "utf8") : readFileSync(resolve(ctx.io.cwd, file), "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return { rule: parseRuleText(text, source), source };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

function checkRule(rule: unknown, source: string): void {
  const problems = validateTrafficRule(rule);
  if (problems.length > 0) throw new CliError(`${source}: invalid rule:\n  ${problems.map((p) => `${p.path || "rule"}: ${p.message}`).join("\n  ")}`);
}

async function checkCommand(ctx: Ctx, args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError("check takes no SERVICE: check -f FILE");
  const { rule, source } = readRule(ctx, ctx.flags.file);
  checkRule(rule, source);
  out(ctx, `${source}: valid`);
  return ExitCode.ok;
}

async function applyCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "apply takes one SERVICE: apply SERVICE -f FILE");
  const { rule, source } = readRule(ctx, ctx.flags.file);
  checkRule(rule, source);
  return write(ctx, service, rule);
}

async function setCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "set takes one SERVICE: set SERVICE --stable k=v --canary k=v --weight N");
  const { stable, canary, weight } = ctx.flags;
  if (stable === undefined || canary === undefined || weight === undefined) throw new UsageError("set needs --stable k=v,…, --canary k=v,… and --weight N (0-100)");
  const fallback = ctx.flags.fallback;
  if (fallback !== undefined && fallback !== "rest" && fallback !== "fail") throw new UsageError(`--fallback must be rest or fail, got ${JSON.stringify(fallback)}`);
  const canaryWeight = wholeNumber(weight, "--weight");
  if (canaryWeight > 100) throw new UsageError(`--weight must be from 0 to 100, got ${canaryWeight}`);
  const rule = canaryRule({
    stable: labels(stable, "--stable"),
    canary: labels(canary, "--canary"),
    canaryWeight,
    sticky: ctx.flags["sticky-header"] !== undefined ? { header: ctx.flags["sticky-header"] } : undefined,
    fallback,
  });
  checkRule(rule, "the rule");
  return write(ctx, service, rule);
}

async function write(ctx: Ctx, service: string, rule: unknown): Promise<number> {
  const store = ctx.store(service);
  const expectVersion = ctx.flags.expect === undefined ? undefined : wholeNumber(ctx.flags.expect, "--expect");
  if (ctx.flags["dry-run"]) {
    const current = await store.current();
    const differences = diffConfig(current?.value ?? {}, rule);
    out(ctx, differences.length === 0 ? "no differences" : formatDiff(differences));
    ctx.io.err(`(dry run: nothing written; in force: ${current ? `version ${current.version}` : "no rule"})\n`);
    return ExitCode.ok;
  }
  const record = await store.write(rule, { comment: ctx.flags.comment, expectVersion });
  out(ctx, `${service}: ${describe(record)}`);
  return ExitCode.ok;
}

async function historyCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "history takes one SERVICE");
  const limit = ctx.flags.limit === undefined ? 20 : wholeNumber(ctx.flags.limit, "--limit");
  const records = await ctx.store(service).history({ limit });
  if (ctx.flags.json) out(ctx, JSON.stringify(records, null, 2));
  else out(ctx, records.length === 0 ? `${service} has no traffic rule versions` : records.map(describe).join("\n"));
  return ExitCode.ok;
}

async function rollbackCommand(ctx: Ctx, args: string[]): Promise<number> {
  if (args.length !== 2) throw new UsageError("rollback takes SERVICE VERSION");
  const [service, versionText] = args;
  const version = wholeNumber(versionText, "VERSION");
  const store = ctx.store(service);
  if (ctx.flags["dry-run"]) {
    const [target, current] = await Promise.all([store.get(version), store.current()]);
    const differences = diffConfig(current?.value ?? {}, target.value);
    out(ctx, differences.length === 0 ? "no differences" : formatDiff(differences));
    return ExitCode.ok;
  }
  const expectVersion = ctx.flags.expect === undefined ? undefined : wholeNumber(ctx.flags.expect, "--expect");
  const record = await store.rollback(version, { comment: ctx.flags.comment, expectVersion });
  out(ctx, `${service}: ${describe(record)}`);
  return ExitCode.ok;
}

async function diffCommand(ctx: Ctx, args: string[]): Promise<number> {
  if (args.length < 2 || args.length > 3) throw new UsageError("diff takes SERVICE FROM [TO]; each side a version number, current or a file");
  const [service, from, to = "current"] = args;
  const store = ctx.store(service);
  const side = async (s: string): Promise<unknown> => {
    if (/^\d+$/.test(s)) return (await store.get(Number(s))).value;
    if (s === "current") return (await store.current())?.value ?? {};
    return readRule(ctx, s).rule;
  };
  const [a, b] = await Promise.all([side(from), side(to)]);
  const differences = diffConfig(a, b);
  out(ctx, differences.length === 0 ? "no differences" : formatDiff(differences));
  return ExitCode.ok;
}

async function watchCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "watch takes one SERVICE");
  const count = ctx.flags.count === undefined ? Infinity : wholeNumber(ctx.flags.count, "--count");
  const store = ctx.store(service);
  const registry = openEtcdRegistry(cliEtcdEndpoints(ctx.flags.endpoints, ctx.io.env, "--endpoints"), ctx.flags.namespace, ctx.logger);
  let seen = 0;
  let previous: unknown;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let chain = Promise.resolve();
  const subscription = registry.watchTrafficRule(service, (update) => {
    chain = chain.then(async () => {
      const record = update.version === 0 ? undefined : await store.current().catch(() => undefined);
      if (ctx.flags.json) out(ctx, JSON.stringify(record ?? { version: 0, value: null }));
      else if (record === undefined) out(ctx, "# no rule in force");
      else {
        out(ctx, `# ${describe(record)}`);
        out(ctx, previous === undefined ? stringify(record.value).trimEnd() : formatDiff(diffConfig(previous, record.value)) || "(rule unchanged)");
      }
      previous = record?.value ?? {};
      if (++seen >= count) finish();
    });
  });
  ctx.io.err(`watching the traffic rule of ${service} (Ctrl-C stops)\n`);
  const stop = () => finish();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await done;
  process.removeListener("SIGINT", stop);
  process.removeListener("SIGTERM", stop);
  subscription.stop();
  await chain;
  await registry.close();
  return ExitCode.ok;
}

async function removeCommand(ctx: Ctx, args: string[]): Promise<number> {
  const service = one(args, "remove takes one SERVICE");
  const expectVersion = ctx.flags.expect === undefined ? undefined : wholeNumber(ctx.flags.expect, "--expect");
  const removed = await ctx.store(service).remove({ expectVersion });
  out(ctx, removed === undefined ? `${service} had no traffic rule in force` : `${service}: version ${removed} taken out of force; every instance serves every call`);
  return ExitCode.ok;
}

/** `version 7 (set by ana@host, 2026-11-24 14:27:42Z): canary 5 %` */
function describe(record: TrafficVersion): string {
  const origin = record.from !== undefined ? ` of ${record.from}` : "";
  const when = record.at.replace("T", " ").replace(/\.\d+Z$/, "Z");
  return `version ${record.version} (${record.kind}${origin} by ${record.author}, ${when})${record.comment ? `: ${record.comment}` : ""}`;
}

function labels(text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes k=v pairs separated by commas, got ${JSON.stringify(text)}`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

function wholeNumber(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function out(ctx: Ctx, text: string): void {
  ctx.io.out(text.endsWith("\n") ? text : `${text}\n`);
}

/** Warnings and errors as `protomesh traffic: warning: …` lines; info and debug are dropped. */
function plainLogger(io: CliIo, bound: LogFields = {}): Logger {
  const line = (level: string) => (msg: string, fields?: LogFields) => {
    const all = { ...bound, ...fields };
    const detail = Object.entries(all)
      .filter(([k]) => k !== "component")
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    io.err(`protomesh traffic: ${level}: ${msg}${detail ? ` (${detail})` : ""}\n`);
  };
  const quiet = () => undefined;
  return { debug: quiet, info: quiet, warn: line("warning"), error: line("error"), child: (f) => plainLogger(io, { ...bound, ...f }) };
}
