/**
 * The edit/diff/history/rollback flow shared by traffic rules and gateway
 * policies: both are versioned documents in etcd (the config center's
 * version record), so one set of routes serves both. A document kind supplies
 * how to open its store, how to parse and validate text (the CLI's own
 * parser and validator), and its audit names; every write is recorded in the
 * audit log with the value before and after.
 */
import { diffConfig } from "../../config/diff";
import { ConfigValidationError, ConflictError } from "../../config/errors";
import type { VersionRecord } from "../../config/records";
import type { AuditLog } from "../audit/audit-log";
import { HttpError } from "../server/http-error";
import { objectBody, stringField } from "../server/http-io";
import type { Route, RouteContext } from "../server/route";

/** A problem in a document: where (a dotted path, "" for the whole) and what. */
export interface DocIssue {
  readonly path: string;
  readonly message: string;
}

export interface WriteMeta {
  readonly comment: string;
  readonly author: string;
  readonly expectVersion?: number;
}

/** One document's store, opened for one request. */
export interface VersionedDoc {
  /** The audit log's target, e.g. `traffic/greeter` or `gateway.default@prod`. */
  readonly target: string;
  /** The version in force; throws when the stored value cannot be read. */
  current(): Promise<VersionRecord | undefined>;
  history(limit: number): Promise<VersionRecord[]>;
  /** Throws when the version does not exist. */
  get(version: number): Promise<VersionRecord>;
  write(doc: unknown, meta: WriteMeta): Promise<VersionRecord>;
  rollback(version: number, meta: WriteMeta): Promise<VersionRecord>;
  /** Takes the document out of force (history stays); the version removed, or undefined when none was. */
  remove?(meta: WriteMeta): Promise<number | undefined>;
}

export interface DocKind {
  /** Route prefix with params, e.g. `/api/traffic/rules/:service`. */
  readonly base: string;
  /** Audit action prefix, e.g. `traffic` gives `traffic.apply`. */
  readonly action: string;
  /** Opens the document named by the route's params (throws HttpError 400 on a bad name). */
  open(params: Readonly<Record<string, string>>): VersionedDoc;
  /** Text (YAML or JSON) to a value; throws an Error saying where the syntax breaks. */
  parse(text: string): unknown;
  validate(doc: unknown): readonly DocIssue[];
  /** Maps a store's own errors to HTTP ones (conflicts, validation); undefined: not one of its errors. */
  mapError(err: unknown): HttpError | undefined;
}

const MAX_TEXT = 256 * 1024;

/** Parses and validates text; the issues name every bad field, or the syntax error. */
export function checkText(kind: DocKind, text: string): { ok: true; value: unknown } | { ok: false; issues: DocIssue[] } {
  let value: unknown;
  try {
    value = kind.parse(text);
  } catch (err) {
    return { ok: false, issues: [{ path: "", message: (err as Error).message }] };
  }
  const issues = kind.validate(value);
  return issues.length > 0 ? { ok: false, issues: [...issues] } : { ok: true, value };
}

export function versionedRoutes(kind: DocKind, audit: AuditLog): Route[] {
  const { base } = kind;

  const fail = (err: unknown): never => {
    if (err instanceof HttpError) throw err;
    const mapped = kind.mapError(err);
    if (mapped) throw mapped;
    if (err instanceof ConflictError) throw new HttpError(409, err.message);
    if (err instanceof ConfigValidationError) throw new HttpError(400, err.message, { issues: err.issues });
    throw err;
  };
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      return fail(err);
    }
  };
  /** The version in force, or why it cannot be read (a garbage value must not hide the history). */
  const currentOf = async (doc: VersionedDoc): Promise<{ record: VersionRecord | undefined; problem?: string }> => {
    try {
      return { record: await doc.current() };
    } catch (err) {
      const mapped = kind.mapError(err);
      if (mapped && mapped.status < 500) return { record: undefined, problem: mapped.message };
      throw err;
    }
  };
  const meta = (ctx: RouteContext, body: Record<string, unknown>): WriteMeta => ({
    comment: stringField(body, "comment", { optional: true, max: 1000 }),
    author: ctx.actor.user,
    expectVersion: typeof body.expectVersion === "number" ? body.expectVersion : undefined,
  });
  const textOf = (body: Record<string, unknown>) => stringField(body, "text", { max: MAX_TEXT });
  const versionOf = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new HttpError(400, `${what} must be a version number`);
    return v;
  };
  const record = (ctx: RouteContext, doc: VersionedDoc, action: string, before: unknown, after: unknown) =>
    audit.record({ who: ctx.actor.user, via: "console", action: `${kind.action}.${action}`, target: doc.target, before, after });

  return [
    {
      method: "GET",
      path: base,
      role: "viewer",
      handler: (ctx) =>
        run(async () => {
          const doc = kind.open(ctx.params);
          const limit = Math.min(Math.max(1, Number(ctx.query.get("limit") ?? 50) || 50), 500);
          const [current, history] = await Promise.all([currentOf(doc), doc.history(limit)]);
          return { current: current.record ?? null, problem: current.problem ?? null, history, removable: doc.remove !== undefined };
        }),
    },
    {
      method: "POST",
      path: `${base}/check`,
      role: "viewer",
      handler: (ctx) =>
        run(async () => {
          const body = objectBody(await ctx.json());
          const checked = checkText(kind, textOf(body));
          if (!checked.ok) return checked;
          const current = await currentOf(kind.open(ctx.params));
          return { ok: true, value: checked.value, diff: diffConfig(current.record?.value ?? {}, checked.value), base: current.record?.version ?? 0 };
        }),
    },
    {
      method: "POST",
      path: `${base}/apply`,
      role: "editor",
      handler: (ctx) =>
        run(async () => {
          const body = objectBody(await ctx.json());
          const checked = checkText(kind, textOf(body));
          if (!checked.ok) throw new HttpError(400, `invalid: ${checked.issues.map((i) => `${i.path || "(document)"}: ${i.message}`).join("; ")}`, { issues: checked.issues });
          const doc = kind.open(ctx.params);
          const before = await currentOf(doc);
          const written = await doc.write(checked.value, meta(ctx, body));
          await record(ctx, doc, "apply", before.record?.value, written.value);
          return written;
        }),
    },
    {
      method: "POST",
      path: `${base}/rollback`,
      role: "editor",
      handler: (ctx) =>
        run(async () => {
          const body = objectBody(await ctx.json());
          const version = versionOf(body.version, '"version"');
          const doc = kind.open(ctx.params);
          const before = await currentOf(doc);
          const m = meta(ctx, body);
          const written = await doc.rollback(version, { ...m, comment: m.comment || `roll back to ${version}` });
          await record(ctx, doc, "rollback", before.record?.value, written.value);
          return written;
        }),
    },
    {
      method: "POST",
      path: `${base}/remove`,
      role: "editor",
      handler: (ctx) =>
        run(async () => {
          const body = objectBody(await ctx.json());
          const doc = kind.open(ctx.params);
          if (!doc.remove) throw new HttpError(400, "this document cannot be removed; roll back to another version instead");
          const before = await currentOf(doc);
          const removed = await doc.remove(meta(ctx, body));
          if (removed === undefined) throw new HttpError(404, "nothing is in force");
          await record(ctx, doc, "remove", before.record?.value, null);
          return { removed };
        }),
    },
    {
      method: "GET",
      path: `${base}/diff`,
      role: "viewer",
      handler: (ctx) =>
        run(async () => {
          const from = Number(ctx.query.get("from"));
          const to = Number(ctx.query.get("to"));
          if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to <= 0) throw new HttpError(400, "give ?from=N&to=M (version numbers; from=0 is empty)");
          const doc = kind.open(ctx.params);
          const [a, b] = await Promise.all([from === 0 ? undefined : doc.get(from), doc.get(to)]);
          return { from, to, diff: diffConfig(a?.value ?? {}, b.value) };
        }),
    },
  ];
}
