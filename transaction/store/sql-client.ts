/**
 * The little the coordinator store and the barrier need from a Postgres connection: run a
 * query, run a function inside one transaction. Two implementations: the `pg` driver (a real
 * server) and PGlite (Postgres compiled to WASM, inside this process). Both speak the same SQL,
 * so the store is written once.
 */
import type { Pool, PoolClient, PoolConfig } from "pg";
import type { PGlite, Transaction as PGliteTransaction } from "@electric-sql/pglite";
import { requireOptional } from "../../runtime/optional-dependency";
import { hearErrors } from "../pg-errors";

/** Result of one statement. */
export interface SqlResult<R> {
  readonly rows: R[];
  /** Rows inserted, updated or deleted. */
  readonly rowCount: number;
}

/**
 * How a statement runs. `prepared: false`: plan it afresh on every run instead of keeping it
 * prepared by name (for statements whose best plan depends on how many rows they touch).
 */
export interface QueryOptions {
  readonly prepared?: boolean;
}

/** Runs statements; inside `transaction`, all on one connection. */
export interface SqlQueryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<SqlResult<R>>;
}

/** A Postgres database the store can use. */
export interface SqlClient extends SqlQueryable {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Closes connections the client opened itself. */
  close(): Promise<void>;
  /** "postgres" or "pglite", for logs and errors. */
  readonly kind: "postgres" | "pglite";
}

export const PG_RANGE = "~8.16.3";
export const PGLITE_RANGE = "~0.3.16";

/** A `pg` pool as a SqlClient; `ownPool` closes it with the client. */
export function pgClient(pool: Pool, ownPool = false): SqlClient {
  // Every connection the pool opens hears its own errors from the start (see hearErrors).
  pool.on("connect", hearErrors);
  return {
    kind: "postgres",
    async query<R>(sql: string, params?: readonly unknown[], options?: QueryOptions) {
      const name = params && params.length > 0 && options?.prepared !== false ? statementName(sql) : undefined;
      const r = await (name === undefined ? pool.query(sql, params as unknown[]) : pool.query({ name, text: sql, values: params as unknown[] }));
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const conn: PoolClient = await pool.connect();
      let broken = false;
      hearErrors(conn);
      try {
        await conn.query("BEGIN");
        const out = await fn(pgQueryable(conn));
        await conn.query("COMMIT");
        return out;
      } catch (err) {
        try {
          await conn.query("ROLLBACK");
        } catch {
          broken = true; // the connection died mid-transaction: do not give it back to the pool
        }
        throw err;
      } finally {
        conn.release(broken);
      }
    },
    async close() {
      if (ownPool) await pool.end();
    },
  };
}

/** Most distinct statement texts prepared by name; texts beyond them run unnamed. */
const MAX_NAMED = 128;
/** Statement text → name, for the whole process: one text has one name on every connection. */
const statementNames = new Map<string, string>();

/**
 * The name a statement with parameters is prepared under, so that each connection parses and
 * plans it once and afterwards only binds and executes it (planning the store's multi-row
 * statements cost Postgres several times their execution). Postgres keeps such a statement's
 * plan while the tables grow, so only statements whose plan is a primary-key lookup whatever
 * the tables hold should be prepared; the others pass `prepared: false`. The store builds a
 * bounded set of texts (one per shape: number of branches); past `MAX_NAMED` a text runs unnamed.
 */
function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < MAX_NAMED) statementNames.set(sql, (name = `protomesh_tx_${statementNames.size + 1}`));
  return name;
}

function pgQueryable(conn: PoolClient): SqlQueryable {
  return {
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await conn.query(sql, params as unknown[]);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
  };
}

/** Opens a `pg` pool on a connection string or config (the optional peer `pg` must be installed). */
export function openPgPool(config: string | PoolConfig): Pool {
  const pg = requireOptional<typeof import("pg")>("pg", "a Postgres database for transactions", PG_RANGE);
  const pool = new pg.Pool(typeof config === "string" ? { connectionString: config } : config);
  // An idle connection that the server drops (a restart) must not crash the process.
  pool.on("error", () => undefined);
  return pool;
}

/** A PGlite database as a SqlClient; `ownDb` closes it with the client. */
export function pgliteClient(db: PGlite, ownDb = false): SqlClient {
  return {
    kind: "pglite",
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await db.query<R>(sql, params as unknown[]);
      return { rows: r.rows, rowCount: r.affectedRows ?? 0 };
    },
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(pgliteQueryable(tx)));
    },
    async close() {
      if (ownDb && !db.closed) await db.close();
    },
  };
}

function pgliteQueryable(tx: PGliteTransaction): SqlQueryable {
  return {
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await tx.query<R>(sql, params as unknown[]);
      return { rows: r.rows, rowCount: r.affectedRows ?? 0 };
    },
  };
}

/** Opens PGlite: in memory without `dataDir`, else persisted there (the optional peer `@electric-sql/pglite`). */
export async function openPGlite(dataDir?: string): Promise<PGlite> {
  const mod = requireOptional<typeof import("@electric-sql/pglite")>("@electric-sql/pglite", "the embedded transaction store", PGLITE_RANGE);
  return mod.PGlite.create(dataDir);
}
