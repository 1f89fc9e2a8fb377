/** `protomesh config get | history | watch | diff`: commands that only read. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, ExitCode, UsageError } from "../../cli/command";
import { diffConfig, formatDiff } from "../diff";
import { checkConfigText, formatOf, type FileIssue } from "../file-formats";
import { formatLabels } from "../labels";
import type { JsonObject, VersionRecord } from "../records";
import { describeRecord, nonNegativeInt, type CliContext } from "./context";

/** `get`: a version's value on stdout (JSON); what it is on stderr. */
export async function getCommand(ctx: CliContext, args: string[]): Promise<number> {
  noPositionals(args, "get");
  const store = ctx.store();
  let record: VersionRecord | undefined;
  if (ctx.flags.version !== undefined) record = await store.get(nonNegativeInt(ctx.flags.version, "--version"));
  else if (ctx.flags.labels !== undefined) record = await store.effective(ctx.labels());
  else record = await store.current();
  for (const problem of await store.check()) ctx.note(`warning: ${problem.key}: ${problem.reason} (ignored)`);
  if (!record) {
    if (ctx.flags.version !== undefined) throw new CliError(`${ctx.label} has no version ${ctx.flags.version}`);
    throw new CliError(`${ctx.label} has no config yet (protomesh config import FILE writes the first version)`);
  }
  ctx.note(`${ctx.label} ${describeRecord(record)}`);
  const gray = await store.gray();
  if (gray && ctx.flags.version === undefined) ctx.note(`gray release active: version ${gray.version} for ${formatLabels(gray.match)}`);
  ctx.out(JSON.stringify(ctx.flags.json ? record : record.value, null, 2));
  return ExitCode.ok;
}

/** `history`: versions, newest first, with markers for current and gray. */
export async function historyCommand(ctx: CliContext, args: string[]): Promise<number> {
  noPositionals(args, "history");
  const store = ctx.store();
  const limit = ctx.flags.limit === undefined ? 20 : nonNegativeInt(ctx.flags.limit, "--limit");
  const [records, current, gray] = await Promise.all([store.history({ limit }), store.current().catch(() => undefined), store.gray().catch(() => undefined)]);
  if (ctx.flags.json) {
    ctx.out(JSON.stringify(records, null, 2));
    return ExitCode.ok;
  }
  if (records.length === 0) {
    ctx.note(`${ctx.label} has no versions yet`);
    return ExitCode.ok;
  }
  const rows = records.map((r) => [
    `${r.version === current?.version ? "*" : r.version === gray?.version ? "g" : " "} ${r.version}`,
    r.at.replace("T", " ").replace(/\.\d+Z$/, "Z"),
    r.author,
    r.kind + (r.from !== undefined ? ` of ${r.from}` : "") + (r.match ? ` (${formatLabels(r.match)})` : ""),
    r.comment,
  ]);
  ctx.out(table([["  VERSION", "WHEN", "AUTHOR", "KIND", "COMMENT"], ...rows]));
  ctx.note("* current   g gray release");
  return ExitCode.ok;
}

/** `watch`: prints the version in force for `--labels`, then each change, until interrupted. */
export async function watchCommand(ctx: CliContext, args: string[]): Promise<number> {
  noPositionals(args, "watch");
  const store = ctx.flags.schema ? await ctx.writableStore() : ctx.store();
  const print = (record: VersionRecord, prev: VersionRecord | undefined) => {
    if (ctx.flags.json) {
      ctx.out(JSON.stringify({ ...record, previousVersion: prev?.version ?? 0 }));
      return;
    }
    ctx.out(`# ${describeRecord(record)}`);
    if (prev) ctx.out(formatDiff(diffConfig(prev.value, record.value)) || "(value unchanged)");
    else ctx.out(JSON.stringify(record.value, null, 2));
  };
  const following = await store.follow(ctx.labels(), print);
  ctx.note(`watching ${ctx.label}${ctx.flags.labels ? ` as ${formatLabels(ctx.labels())}` : ""} (Ctrl-C stops)`);
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await following.stop();
  return ExitCode.ok;
}

/** `diff FROM [TO]`: field differences; each side is a version, `current`, `gray` or a file. */
export async function diffCommand(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length < 1 || args.length > 2) throw new UsageError("diff takes one or two of: a version number, current, gray, a file");
  const [from, to = "current"] = args;
  const [a, b] = await Promise.all([resolveSide(ctx, from), resolveSide(ctx, to)]);
  const differences = diffConfig(a, b);
  ctx.out(differences.length === 0 ? "no differences" : formatDiff(differences));
  return ExitCode.ok;
}

async function resolveSide(ctx: CliContext, side: string): Promise<JsonObject> {
  const store = ctx.store();
  if (/^\d+$/.test(side)) return (await store.get(Number(side))).value;
  if (side === "current") {
    const record = await store.current();
    if (!record) throw new CliError(`${ctx.label} has no current version`);
    return record.value;
  }
  if (side === "gray") {
    const gray = await store.gray();
    if (!gray) throw new CliError(`${ctx.label} has no gray release`);
    return (await store.get(gray.version)).value;
  }
  return readConfigFile(ctx, side);
}

/** Reads and validates a config file; throws `CliError` listing every problem. */
export async function readConfigFile(ctx: CliContext, file: string): Promise<JsonObject> {
  const format = (ctx.flags.format as ReturnType<typeof formatOf>) ?? formatOf(file);
  if (!format || !["json", "yaml", "properties"].includes(format)) {
    throw new UsageError(`cannot tell the format of ${file}: name it .json, .yaml, .yml or .properties, or pass --format json|yaml|properties`);
  }
  let text: string;
  try {
    text = readFileSync(resolve(ctx.io.cwd, file), "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const schema = await ctx.schema();
  const result = checkConfigText(schema, text, format);
  if (!result.ok) throw new CliError(formatFileIssues(file, schema.typeName, result.issues));
  return result.json;
}

function formatFileIssues(file: string, typeName: string, issues: readonly FileIssue[]): string {
  const lines = issues.map((i) => `${file}${i.line ? `:${i.line}` : ""}: ${i.path ? `${i.path}: ` : ""}${i.message}`);
  return `${lines.join("\n")}\n${issues.length} ${issues.length === 1 ? "problem" : "problems"} against ${typeName}; nothing written`;
}

export function noPositionals(args: string[], command: string): void {
  if (args.length > 0) throw new UsageError(`${command} takes no arguments (got ${args.join(" ")})`);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ").trimEnd()).join("\n");
}
