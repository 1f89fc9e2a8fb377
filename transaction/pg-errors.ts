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
