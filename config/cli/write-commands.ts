/** `protomesh config set | import | rollback | gray`: commands that write versions. */
import type { DescMessage } from "@bufbuild/protobuf";
import { ExitCode, UsageError } from "../../cli/command";
import { normalizeConfig } from "../definition";
import { diffConfig, formatDiff } from "../diff";
import { ConfigValidationError } from "../errors";
import { deletePath, formatPath, parsePath, setPath, type PathSegment } from "../json-path";
import { formatLabels, parseLabels } from "../labels";
import type { JsonObject, VersionRecord } from "../records";
import { describeRecord, type CliContext } from "./context";
import { noPositionals, readConfigFile } from "./read-commands";

/** `set PATH=VALUE… [--unset PATH]…`: patches the current value; concurrent patches are re-applied, never lost. */
export async function setCommand(ctx: CliContext, args: string[]): Promise<number> {
  const store = await ctx.writableStore();
  const patch = parsePatch(store.schema!.desc, args, ctx.flags.unset ?? []);
  if (ctx.flags["dry-run"]) {
    const current = await store.current();
    return preview(ctx, current?.value ?? {}, await validated(ctx, patch(structuredClone(current?.value ?? {}))));
  }
  const previous = await store.current();
  const record = await store.update(patch, ctx.writeOptions());
  return reportWrite(ctx, record, await baseValue(ctx, record, previous));
}

/** `import FILE`: replaces the whole value with a validated file. */
export async function importCommand(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError("import takes one file: app.json, app.yaml or app.properties");
  const store = await ctx.writableStore();
  const json = await readConfigFile(ctx, args[0]);
  const previous = await store.current();
  if (ctx.flags["dry-run"]) return preview(ctx, previous?.value ?? {}, json);
  const record = await store.write(json, { ...ctx.writeOptions(), kind: "import" });
  return reportWrite(ctx, record, await baseValue(ctx, record, previous));
}

/** `rollback VERSION`: a new version copying an earlier one. */
export async function rollbackCommand(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length !== 1 || !/^\d+$/.test(args[0])) throw new UsageError("rollback takes one version number");
  const store = ctx.flags.schema || ctx.flags.protos || ctx.flags["descriptor-set"] ? await ctx.writableStore() : ctx.store();
  const target = Number(args[0]);
  const previous = await store.current();
  if (ctx.flags["dry-run"]) return preview(ctx, previous?.value ?? {}, (await store.get(target)).value);
  const record = await store.rollback(target, ctx.writeOptions());
  return reportWrite(ctx, record, await baseValue(ctx, record, previous));
}

/** `gray start (FILE | PATH=VALUE…) --match k=v,…`, `gray status`, `gray promote`, `gray drop`. */
export async function grayCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  switch (action) {
    case "start": {
      if (!ctx.flags.match) throw new UsageError("gray start needs --match key=value[,key=value] (the labels of the instances that get it)");
      let match: Record<string, string>;
      try {
        match = parseLabels(ctx.flags.match);
      } catch (err) {
        throw new UsageError(`--match: ${(err as Error).message}`);
      }
      if (rest.length === 0) throw new UsageError("gray start needs a file or PATH=VALUE changes");
      const store = await ctx.writableStore();
      const current = await store.current();
      const value =
        rest.length === 1 && !rest[0].includes("=")
          ? await readConfigFile(ctx, rest[0])
          : await validated(ctx, parsePatch(store.schema!.desc, rest, ctx.flags.unset ?? [])(structuredClone(current?.value ?? {})));
      if (ctx.flags["dry-run"]) return preview(ctx, current?.value ?? {}, value);
      const record = await store.startGray(value, match, ctx.writeOptions());
      ctx.out(`${ctx.label}: gray release of ${describeRecord(record)}`);
      ctx.out(formatDiff(diffConfig(current?.value ?? {}, record.value)) || "(same value as current)");
      await ctx.audit("config.gray", record.author, current?.value ?? {}, { version: record.version, match, value: record.value });
      return ExitCode.ok;
    }
    case "status": {
      noPositionals(rest, "gray status");
      const store = ctx.store();
      const gray = await store.gray();
      if (!gray) {
        ctx.out(`${ctx.label}: no gray release`);
        return ExitCode.ok;
      }
      const [record, current] = await Promise.all([store.get(gray.version), store.current()]);
      if (ctx.flags.json) {
        ctx.out(JSON.stringify({ rule: gray, record, currentVersion: current?.version ?? 0 }, null, 2));
        return ExitCode.ok;
      }
      ctx.out(`${ctx.label}: version ${gray.version} for instances with ${formatLabels(gray.match)} (current: ${current?.version ?? "none"})`);
      ctx.out(formatDiff(diffConfig(current?.value ?? {}, record.value)) || "(same value as current)");
      return ExitCode.ok;
    }
    case "promote": {
      noPositionals(rest, "gray promote");
      const store = ctx.store();
      const previous = await store.current();
      const record = await store.promoteGray(ctx.writeOptions());
      return reportWrite(ctx, record, await baseValue(ctx, record, previous));
    }
    case "drop": {
      noPositionals(rest, "gray drop");
      const rule = await ctx.store().dropGray();
      await ctx.audit("config.gray.drop", ctx.flags.author, rule ?? null, null);
      ctx.out(
        rule
          ? `${ctx.label}: gray release of version ${rule.version} dropped; ${formatLabels(rule.match)} instances are back on the current version`
          : `${ctx.label}: unreadable gray rule removed`,
      );
      return ExitCode.ok;
    }
    default:
      throw new UsageError(`gray needs one of: start, status, promote, drop${action ? ` (got ${JSON.stringify(action)})` : ""}`);
  }
}

/**
 * Turns `path=value` arguments into a change of a JSON value. Values are JSON
 * when they parse as JSON (`10`, `true`, `["a"]`, `"quoted"`), text otherwise.
 * Paths may use proto or JSON field names; they are rewritten to JSON names.
 */
function parsePatch(desc: DescMessage, assignments: readonly string[], unsets: readonly string[]): (value: JsonObject) => JsonObject {
  if (assignments.length === 0 && unsets.length === 0) throw new UsageError("set needs PATH=VALUE arguments (or --unset PATH)");
  const sets = assignments.map((a) => {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`${JSON.stringify(a)} is not PATH=VALUE`);
    return { path: jsonNames(desc, pathOf(a.slice(0, eq))), value: parseValue(a.slice(eq + 1)) };
  });
  const removals = unsets.map((u) => jsonNames(desc, pathOf(u)));
  return (value) => {
    for (const r of removals) deletePath(value, r);
    for (const s of sets) {
      try {
        setPath(value, s.path, s.value);
      } catch (err) {
        throw new UsageError(`cannot set ${formatPath(s.path)}: ${(err as Error).message}`);
      }
    }
    return value;
  };
}

function pathOf(text: string): PathSegment[] {
  try {
    return parsePath(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Rewrites proto field names to JSON names along `path`, as far as the schema describes it. */
function jsonNames(desc: DescMessage, path: PathSegment[]): PathSegment[] {
  const out: PathSegment[] = [];
  let message: DescMessage | undefined = desc;
  let inMapOrList: DescMessage | undefined | "leaf";
  for (const seg of path) {
    if (inMapOrList !== undefined) {
      out.push(seg);
      message = inMapOrList === "leaf" ? undefined : inMapOrList;
      inMapOrList = undefined;
      continue;
    }
    if (typeof seg === "number" || !message) {
      out.push(seg);
      continue;
    }
    const field = message.fields.find((f) => f.name === seg || f.jsonName === seg);
    if (!field) {
      out.push(seg);
      message = undefined;
      continue;
    }
    out.push(field.jsonName);
    if (field.fieldKind === "message") message = field.message;
    else if (field.fieldKind === "list") inMapOrList = field.listKind === "message" ? field.message : "leaf";
    else if (field.fieldKind === "map") inMapOrList = field.mapKind === "message" ? field.message : "leaf";
    else message = undefined;
  }
  return out;
}

async function validated(ctx: CliContext, value: JsonObject): Promise<JsonObject> {
  const result = normalizeConfig(await ctx.schema(), value);
  if (!result.ok) throw new ConfigValidationError(result.issues, `${ctx.label} config`);
  return result.json;
}

async function baseValue(ctx: CliContext, record: VersionRecord, previous: VersionRecord | undefined): Promise<JsonObject> {
  if (record.base === 0) return {};
  if (previous?.version === record.base) return previous.value;
  return (await ctx.store().get(record.base)).value;
}

async function reportWrite(ctx: CliContext, record: VersionRecord, before: JsonObject): Promise<number> {
  ctx.out(`${ctx.label}: wrote ${describeRecord(record)}${record.base ? `, was ${record.base}` : ""}`);
  const diff = formatDiff(diffConfig(before, record.value));
  ctx.out(diff || "(value unchanged)");
  await ctx.audit(`config.${record.kind}`, record.author, before, record.value);
  return ExitCode.ok;
}

function preview(ctx: CliContext, before: JsonObject, after: JsonObject): number {
  ctx.out(`${ctx.label}: dry run, nothing written`);
  ctx.out(formatDiff(diffConfig(before, after)) || "(value unchanged)");
  return ExitCode.ok;
}
