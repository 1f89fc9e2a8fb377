import type { Pool, PoolConfig } from "pg";
import type { PGlite } from "@electric-sql/pglite";
import { openPGlite, openPgPool, pgClient, pgliteClient } from "./sql-client";
import { openSqlStore } from "./sql-store";
import type { TxStore } from "./types";

/**
 * The coordinator's store on a PostgreSQL server (the `pg` driver): a connection string, a pool
 * config, or a pool you own. Migrations run before it resolves.
 *
 * @example
 *   const store = await postgresStore("postgres://tx@db/tx");
 */
export async function postgresStore(source: string | PoolConfig | Pool): Promise<TxStore> {
  const own = typeof source === "string" || !("connect" in source);
  const pool = own ? openPgPool(source as string | PoolConfig) : (source as Pool);
  try {
    return await openSqlStore(pgClient(pool, own));
  } catch (err) {
    if (own) await pool.end().catch(() => undefined);
    throw err;
  }
}

/**
 * The embedded store: PGlite, a real Postgres compiled to WASM, in this process. In memory
 * without `dataDir`; with one, durable there (one process at a time may open a directory).
 */
export async function embeddedStore(source?: string | PGlite): Promise<TxStore> {
  const own = source === undefined || typeof source === "string";
  const db = own ? await openPGlite(source as string | undefined) : (source as PGlite);
  return openSqlStore(pgliteClient(db, own));
}
