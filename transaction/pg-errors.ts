/**
 * One listener for the "error" event of `pg` connections, shared by the coordinator's store
 * (store/sql-client.ts) and the barrier (barrier/adapter-pg.ts). It imports nothing from `pg`:
 * loading it loads no driver.
 */

const heard = new WeakSet<object>();

/**
 * A connection that dies while checked out (a server restart) emits "error" on its client, now
 * or after it went back to the pool; unheard, that crashes the process. The failed query
 * rejects anyway, which is what we act on, so the event itself needs only a listener. Adds it
 * once per connection, however often it is called.
 */
export function hearErrors(conn: { on(event: "error", fn: () => void): unknown }): void {
  if (heard.has(conn)) return;
  heard.add(conn);
  conn.on("error", () => undefined);
}

/**
 * SQLSTATEs of a store that is up but refuses writes: a read-only transaction (a standby, or
 * `default_transaction_read_only`), a missing privilege, a full disk.
 */
const REFUSES_WRITES = new Set(["25006", "42501", "53100"]);

/** Whether `err` is Postgres refusing a write (rather than being unreachable). */
export function refusesWrites(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && REFUSES_WRITES.has(code);
}

/** How the coordinator words a store failure: "unavailable: …", or "refuses writes (SQLSTATE …): …". */
export function storeFailureText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (refusesWrites(err)) return `transaction store refuses writes (SQLSTATE ${(err as { code: string }).code}): ${message}`;
  return `transaction store unavailable: ${message}`;
}
