/**
 * The Config page's API over the config center (`config/`): values with their
 * proto schema, validation as the operator types, a diff before publishing,
 * history with a diff between any two versions, rollback to any version, and
 * gray release by labels with promote or drop. Every write is recorded in the
 * audit log with the value before and after.
 */
import type { Etcd3 } from "etcd3";
import type { FileRegistry } from "@bufbuild/protobuf";
import { openStore, type ConfigStore } from "../../config/store";
import { ConfigError, ConfigValidationError, ConflictError } from "../../config/errors";
import { normalizeConfig, type ConfigSchema } from "../../config/definition";
import { diffConfig } from "../../config/diff";
import { parseLabels } from "../../config/labels";
import { checkName } from "../../config/keys";
import type { EtcdOptions } from "../../registry/etcd/options";
import type { AuditLog } from "../audit/audit-log";
import type { DescriptorCatalog } from "../api-docs/descriptor-catalog";
import { HttpError } from "../server/http-error";
import { objectBody } from "../server/http-io";
import type { ConsoleModule, RouteContext } from "../server/route";
import { listConfigApps } from "./app-list";
import { schemaFields } from "./schema-view";

export interface ConfigModuleDeps {
  readonly etcd: Etcd3;
  readonly etcdOptions: EtcdOptions;
  readonly namespace: string;
  readonly catalog: DescriptorCatalog;
  readonly audit: AuditLog;
}

export function configModule(deps: ConfigModuleDeps): ConsoleModule {
  const stores = new Map<string, ConfigStore>();

  /** A registry holding `typeName`: the project's protos, the app's own service, then every service. */
  async function schemaFor(typeName: string, app: string): Promise<ConfigSchema | undefined> {
    if (!typeName) return undefined;
    const tries: (() => Promise<FileRegistry>)[] = [
      async () => deps.catalog.registry([]),
      async () => deps.catalog.registry([await deps.catalog.service(app)]),
      async () => deps.catalog.registry(await deps.catalog.all()),
    ];
    for (const t of tries) {
      const registry = await t();
      const desc = registry.getMessage(typeName);
      if (desc) return { typeName, desc, registry };
    }
    return undefined;
  }

  async function storeFor(env: string, app: string, typeName: string): Promise<{ store: ConfigStore; schema?: ConfigSchema }> {
    try {
      checkName(env, "env");
      checkName(app, "app");
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const schema = await schemaFor(typeName, app);
    const key = `${env}/${app}/${schema?.typeName ?? ""}`;
    let store = stores.get(key);
    if (!store) {
      store = openStore({ ...deps.etcdOptions, namespace: deps.namespace, env, app, schema });
      stores.set(key, store);
    }
    return { store, schema };
  }

  /** The store of an app, with the schema named by its latest version (or the request). */
  async function open(ctx: RouteContext, typeHint = ""): Promise<{ store: ConfigStore; schema?: ConfigSchema; typeName: string }> {
    const { env, app } = ctx.params as { env: string; app: string };
    const probe = await storeFor(env, app, "");
    const latest = (await probe.store.history({ limit: 1 }))[0];
    const typeName = typeHint || latest?.type || "";
    return { ...(await storeFor(env, app, typeName)), typeName };
  }

  const needSchema = (schema: ConfigSchema | undefined, typeName: string): ConfigSchema => {
    if (schema) return schema;
    throw new HttpError(409, typeName
      ? `the schema ${typeName} is not known to the console: start it with --protos DIR, or run an instance of the app that serves it through reflection`
      : "this config has no schema type yet: give its proto message name");
  };

  const write = async <T>(ctx: RouteContext, action: string, fn: () => Promise<T>, before: unknown, after: (r: T) => unknown): Promise<T> => {
    try {
      const result = await fn();
      await deps.audit.record({ who: ctx.actor.user, via: "console", action, target: `${ctx.params.app}@${ctx.params.env}`, before, after: after(result) });
      return result;
    } catch (err) {
      if (err instanceof ConfigValidationError) throw new HttpError(400, err.message, { issues: err.issues });
      if (err instanceof ConflictError) throw new HttpError(409, err.message);
      if (err instanceof ConfigError) throw new HttpError(400, err.message);
      throw err;
    }
  };

  const comment = (body: Record<string, unknown>) => (typeof body.comment === "string" ? body.comment : "");

  return {
    name: "config",
    title: "Config",
    routes: [
      { method: "GET", path: "/api/config/apps", role: "viewer", handler: async () => ({ apps: await listConfigApps(deps.etcd, deps.namespace) }) },
      {
        method: "GET",
        path: "/api/config/:env/:app",
        role: "viewer",
        handler: async (ctx) => {
          const { store, schema, typeName } = await open(ctx);
          const [current, gray, history] = await Promise.all([store.current(), store.gray(), store.history({ limit: Number(ctx.query.get("limit") ?? 100) || 100 })]);
          return {
            current: current ?? null,
            gray: gray ?? null,
            history,
            typeName,
            schema: schema ? schemaFields(schema.desc) : null,
            schemaProblem: schema ? undefined : typeName ? `schema ${typeName} not found (start the console with --protos, or run an instance of the app)` : "no versions yet",
          };
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/check",
        role: "viewer",
        handler: async (ctx) => {
          const body = objectBody(await ctx.json());
          const { store, schema, typeName } = await open(ctx, typeof body.type === "string" ? body.type : "");
          const s = needSchema(schema, typeName);
          const result = normalizeConfig(s, body.value);
          const current = await store.current();
          if (!result.ok) return { ok: false, issues: result.issues };
          return { ok: true, value: result.json, diff: diffConfig(current?.value ?? {}, result.json), base: current?.version ?? 0 };
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/publish",
        role: "editor",
        handler: async (ctx) => {
          const body = objectBody(await ctx.json());
          const { store, schema, typeName } = await open(ctx, typeof body.type === "string" ? body.type : "");
          needSchema(schema, typeName);
          const before = await store.current();
          const expectVersion = typeof body.expectVersion === "number" ? body.expectVersion : undefined;
          return write(ctx, "config.publish", () => store.write(body.value, { comment: comment(body), author: ctx.actor.user, expectVersion }), before?.value, (r) => r.value);
        },
      },
      {
        method: "GET",
        path: "/api/config/:env/:app/diff",
        role: "viewer",
        handler: async (ctx) => {
          const { store } = await open(ctx);
          const from = Number(ctx.query.get("from"));
          const to = Number(ctx.query.get("to"));
          if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to <= 0) throw new HttpError(400, "give ?from=N&to=M (version numbers; from=0 is empty)");
          const get = async (v: number) => {
            try {
              return await store.get(v);
            } catch (err) {
              throw new HttpError(404, (err as Error).message);
            }
          };
          const [a, b] = await Promise.all([from === 0 ? undefined : get(from), get(to)]);
          return { from, to, diff: diffConfig(a?.value ?? {}, b.value) };
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/rollback",
        role: "editor",
        handler: async (ctx) => {
          const body = objectBody(await ctx.json());
          if (typeof body.version !== "number") throw new HttpError(400, '"version" must be a version number');
          const { store } = await open(ctx);
          const before = await store.current();
          return write(ctx, "config.rollback", () => store.rollback(body.version as number, { comment: comment(body), author: ctx.actor.user }), before?.value, (r) => ({ version: r.version, from: r.from, value: r.value }));
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/gray",
        role: "editor",
        handler: async (ctx) => {
          const body = objectBody(await ctx.json());
          const { store, schema, typeName } = await open(ctx);
          needSchema(schema, typeName);
          let match: Record<string, string>;
          try {
            match = typeof body.match === "string" ? parseLabels(body.match) : (objectBody(body.match) as Record<string, string>);
          } catch (err) {
            throw new HttpError(400, `labels: ${(err as Error).message}`);
          }
          const before = await store.current();
          return write(ctx, "config.gray", () => store.startGray(body.value, match, { comment: comment(body), author: ctx.actor.user }), before?.value, (r) => ({ version: r.version, match, value: r.value }));
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/gray/promote",
        role: "editor",
        handler: async (ctx) => {
          const body = objectBody(await ctx.json());
          const { store } = await open(ctx);
          const before = await store.current();
          return write(ctx, "config.promote", () => store.promoteGray({ comment: comment(body), author: ctx.actor.user }), before?.value, (r) => r.value);
        },
      },
      {
        method: "POST",
        path: "/api/config/:env/:app/gray/drop",
        role: "editor",
        handler: async (ctx) => {
          const { store } = await open(ctx);
          const gray = await store.gray().catch(() => undefined);
          return write(ctx, "config.gray.drop", async () => ({ dropped: (await store.dropGray()) ?? null }), gray, () => null);
        },
      },
    ],
    async close() {
      for (const s of stores.values()) s.close();
      stores.clear();
    },
  };
}
