/**
 * What every `protomesh config` subcommand shares: its flags, the store, the
 * schema (found on first use), a logger that prints warnings as plain lines,
 * and the helpers that print versions.
 */
import { CliError, UsageError, type CliIo } from "../../cli/command";
import { cliEtcdEndpoints } from "../../cli/etcd-endpoints";
import type { Logger, LogFields } from "../../runtime/logger";
import type { ConfigSchema } from "../definition";
import { parseLabels } from "../labels";
import type { VersionRecord } from "../records";
import { openStore, type ConfigStore } from "../store";
import { loadSchema } from "./schema-source";

/** Every flag of `protomesh config`; each subcommand accepts a subset. */
export interface Flags {
  app?: string;
  env?: string;
  namespace?: string;
  endpoints?: string;
  schema?: string;
  protos?: string;
  "descriptor-set"?: string;
  comment?: string;
  author?: string;
  expect?: string;
  "dry-run"?: boolean;
  json?: boolean;
  version?: string;
  labels?: string;
  limit?: string;
  format?: string;
  match?: string;
  unset?: string[];
  help?: boolean;
}

export class CliContext {
  private reader: ConfigStore | undefined;
  private writer: ConfigStore | undefined;
  private schemaCache: ConfigSchema | undefined;
  readonly logger: Logger;

  constructor(
    readonly io: CliIo,
    readonly flags: Flags,
  ) {
    this.logger = plainLogger(io);
  }

  get app(): string {
    const app = this.flags.app ?? this.io.env.PROTOMESH_APP;
    if (!app) throw new UsageError("--app is required (or set PROTOMESH_APP)");
    return app;
  }

  get env(): string {
    const env = this.flags.env ?? this.io.env.PROTOMESH_ENV;
    if (!env) throw new UsageError("--env is required (or set PROTOMESH_ENV)");
    return env;
  }

  /** A store for reading (no schema needed). */
  store(): ConfigStore {
    return (this.reader ??= this.open(undefined));
  }

  /** A store that validates writes against the schema. */
  async writableStore(): Promise<ConfigStore> {
    if (this.writer) return this.writer;
    const schema = await this.schema();
    return (this.writer = this.open(schema));
  }

  /** The schema: `--schema TYPE`, else the type recorded with the latest version. */
  async schema(): Promise<ConfigSchema> {
    if (this.schemaCache) return this.schemaCache;
    let typeName = this.flags.schema;
    if (!typeName) {
      const recent = await this.store().history({ limit: 20 });
      typeName = recent.find((r) => r.type !== "")?.type;
      if (!typeName) throw new UsageError(`--schema TYPE is needed: no version of ${this.label} records its type yet`);
    }
    this.schemaCache = await loadSchema(typeName, { protos: this.flags.protos, descriptorSet: this.flags["descriptor-set"] }, this.io.cwd, this.io.env);
    return this.schemaCache;
  }

  get label(): string {
    return `${this.app}@${this.env}`;
  }

  /** `--expect N` as a number. */
  expectVersion(): number | undefined {
    return this.flags.expect === undefined ? undefined : nonNegativeInt(this.flags.expect, "--expect");
  }

  labels(): Record<string, string> {
    try {
      return parseLabels(this.flags.labels ?? "");
    } catch (err) {
      throw new UsageError(`--labels: ${(err as Error).message}`);
    }
  }

  writeOptions(): { comment?: string; author?: string; expectVersion?: number } {
    return { comment: this.flags.comment, author: this.flags.author, expectVersion: this.expectVersion() };
  }

  out(text: string): void {
    this.io.out(text.endsWith("\n") ? text : `${text}\n`);
  }

  note(text: string): void {
    this.io.err(text.endsWith("\n") ? text : `${text}\n`);
  }

  /**
   * Records a write in the console's audit log (`/protomesh/<ns>/console/audit/`), so the
   * console shows changes made from the command line too. Best effort: a failure is one
   * warning line, never a failed command (the version itself is written and carries its author).
   */
  async audit(action: string, who: string | undefined, before: unknown, after: unknown): Promise<void> {
    try {
      const { AuditLog } = require("../../console/audit/audit-log") as typeof import("../../console/audit/audit-log");
      // The store that just wrote: its connection is open already.
      const store = this.writer ?? this.store();
      const log = new AuditLog(store.etcd, store.namespace, 2000);
      await log.record({ who: who ?? process.env.PROTOMESH_USER ?? "cli", via: "cli", action, target: this.label, before, after });
    } catch (err) {
      this.note(`warning: the change was made but not recorded in the audit log: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.reader?.close();
    this.writer?.close();
  }

  private open(schema: ConfigSchema | undefined): ConfigStore {
    try {
      const endpoints = cliEtcdEndpoints(this.flags.endpoints, this.io.env, "--endpoints");
      return openStore({ app: this.app, env: this.env, namespace: this.flags.namespace, endpoints, schema, author: this.flags.author, logger: this.logger });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new CliError((err as Error).message);
    }
  }
}

/** `version 7 (set by ana@host, 2026-11-24 14:27:42Z): raise the limit` */
export function describeRecord(record: VersionRecord): string {
  const origin = record.from !== undefined ? ` of ${record.from}` : "";
  const match = record.match ? ` for ${Object.entries(record.match).map(([k, v]) => `${k}=${v}`).join(",")}` : "";
  const when = record.at.replace("T", " ").replace(/\.\d+Z$/, "Z");
  return `version ${record.version} (${record.kind}${origin}${match} by ${record.author}, ${when})${record.comment ? `: ${record.comment}` : ""}`;
}

export function nonNegativeInt(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Warnings and errors as `protomesh config: warning: …` lines; info and debug are dropped. */
function plainLogger(io: CliIo, bound: LogFields = {}): Logger {
  const line = (level: string) => (msg: string, fields?: LogFields) => {
    const all = { ...bound, ...fields };
    const detail = Object.entries(all)
      .filter(([k]) => !["component", "app", "env"].includes(k))
      .map(([k, v]) => `${k}=${v instanceof Error ? v.message : typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    io.err(`protomesh config: ${level}: ${msg}${detail ? ` (${detail})` : ""}\n`);
  };
  const quiet = () => undefined;
  return { debug: quiet, info: quiet, warn: line("warning"), error: line("error"), child: (f) => plainLogger(io, { ...bound, ...f }) };
}
