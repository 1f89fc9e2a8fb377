/**
 * Where each service of the transfer example keeps its data: its own database on a Postgres
 * server (through a `pg` pool), or PGlite (Postgres compiled to WASM) in the process.
 */
import type { Pool } from "pg";
import type { PGlite } from "@electric-sql/pglite";
import { pgBarrier, pgliteBarrier, type Barrier } from "protomesh/transaction";
import type { Queryable } from "./account-service";

/** A `pg` pool, or a PGlite database. */
export type Database = { pool: Pool } | { pglite: PGlite };

/** The barrier guarding branch calls in `database`, and plain queries on it. */
export function barrierOn(database: Database): { barrier: Barrier<Queryable>; db: Queryable } {
  if ("pool" in database) return { barrier: pgBarrier(database.pool) as unknown as Barrier<Queryable>, db: database.pool };
  return { barrier: pgliteBarrier(database.pglite) as unknown as Barrier<Queryable>, db: database.pglite as unknown as Queryable };
}

/** A pool on one database (its connection errors are answered by the failing queries). */
export async function openPool(url: string): Promise<Pool> {
  const { Pool } = await import("pg");
  const pool = new Pool({ connectionString: url, max: 10 });
  pool.on("error", () => undefined);
  return pool;
}

/** A failure to reach or use the Postgres server, with a message that says what to do. */
export class PostgresUnavailableError extends Error {}

/** `postgres://user:…@host:port/db` without the password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "…";
    return u.toString();
  } catch {
    return "(not a URL)";
  }
}

/**
 * One database per name on the server of `serverUrl` (created when missing, over a connection
 * to the database `serverUrl` names); returns each one's connection string.
 */
export async function ensureDatabases<N extends string>(serverUrl: string, names: readonly N[]): Promise<Record<N, string>> {
  let base: URL;
  try {
    base = new URL(serverUrl);
  } catch {
    throw new PostgresUnavailableError(`--postgres: "${serverUrl}" is not a URL (expected postgres://user@host:port/database)`);
  }
  if (base.protocol !== "postgres:" && base.protocol !== "postgresql:") {
    throw new PostgresUnavailableError(`--postgres: expected a postgres:// URL, got ${redactUrl(serverUrl)}`);
  }
  const { Client } = await import("pg");
  const admin = new Client({ connectionString: serverUrl, connectionTimeoutMillis: 5000 });
  admin.on("error", () => undefined);
  try {
    await admin.connect();
  } catch (err) {
    const where = `${base.hostname || "localhost"}:${base.port || 5432}`;
    throw new PostgresUnavailableError(`cannot connect to Postgres at ${where} (${describe(err)}): start one, or pass --postgres with the URL of a server you can connect to (examples/transfer/README.md shows how to start a private one)`);
  }
  try {
    const urls = {} as Record<N, string>;
    for (const name of names) {
      const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      if (exists.rowCount === 0) {
        await admin.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
          if (err.code !== "42P04") throw err; // created meanwhile by someone else
        });
      }
      const u = new URL(serverUrl);
      u.pathname = `/${name}`;
      urls[name] = u.toString();
    }
    return urls;
  } catch (err) {
    throw new PostgresUnavailableError(`cannot create the example's databases on ${redactUrl(serverUrl)} (${describe(err)}): the user needs CREATEDB, or create ${names.join(", ")} yourself`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: Array<{ message?: string }> };
  // An AggregateError (every address of `localhost` refused) has an empty message.
  const msg = e.message || e.errors?.map((x) => x.message).join("; ") || String(err);
  return e.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}
