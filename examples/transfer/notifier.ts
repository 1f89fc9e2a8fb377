/**
 * The notification service: the Notifier (proto/examples/transfer/notification/v1) on its own
 * database. TransferDone is a reliable message's subscriber: it records the notification inside
 * the barrier's local transaction, so a redelivered message records nothing the second time.
 */
import { RpcError, Status, createServer, type CallContext, type Registrar, type Server } from "protomesh";
import { branchCallOf, type Barrier } from "protomesh/transaction";
import { NotifierDefinition, type NotifierHandlers } from "../../gen/examples/transfer/notification/v1/notification_protomesh";
import type { TransferDoneRequest } from "../../gen/examples/transfer/notification/v1/notification";
import type { Queryable } from "./account-service";
import { barrierOn, type Database } from "./database";

export const NOTIFICATION_SCHEMA = `CREATE TABLE IF NOT EXISTS notification (
  id          bigserial PRIMARY KEY,
  message_gid text   NOT NULL,
  text        text   NOT NULL,
  recorded_at bigint NOT NULL
)`;

/** "transfer GID of 15.00 from alice to bob" */
export function notificationText(n: TransferDoneRequest): string {
  return `transfer ${n.transfer} of ${(n.amount / 100).toFixed(2)} from ${n.from} to ${n.to}`;
}

/** Notifier handlers on `barrier`; `read` runs the plain query of List. */
export function notifierHandlers<Tx extends Queryable>(barrier: Barrier<Tx>, read: Queryable): NotifierHandlers {
  return {
    async transferDone(req: TransferDoneRequest, ctx: CallContext) {
      if (!req.transfer || !req.from || !req.to || !(req.amount > 0)) throw new RpcError(Status.INVALID_ARGUMENT, "transfer, from, to and a positive amount are required");
      const call = branchCallOf(ctx); // INVALID_ARGUMENT unless a transaction delivers it
      const r = await barrier.run(call, async (tx) => {
        await tx.query(`INSERT INTO notification (message_gid, text, recorded_at) VALUES ($1, $2, $3)`, [call.gid, notificationText(req), Date.now()]);
      });
      return { applied: r.ran };
    },
    async list() {
      const r = await read.query(`SELECT message_gid, text, recorded_at FROM notification ORDER BY id`);
      const rows = r.rows as Array<{ message_gid: string; text: string; recorded_at: string | number }>;
      return { notifications: rows.map((n) => ({ messageGid: n.message_gid, text: n.text, recordedAtMs: Number(n.recorded_at) })) };
    },
  };
}

export interface Notifier {
  readonly server: Server;
  readonly barrier: Barrier<Queryable>;
  /** Plain queries on the notifier's database. */
  readonly db: Queryable;
  close(): Promise<void>;
}

export interface NotifierOptions {
  /** Service name in the registry (default "notifier"). */
  name?: string;
  /** A `pg` pool, or a PGlite database; the notifier creates its tables in it. */
  database: Database;
  registry?: Registrar;
  listen?: string;
}

export async function startNotifier(o: NotifierOptions): Promise<Notifier> {
  const { barrier, db } = barrierOn(o.database);
  await db.query(NOTIFICATION_SCHEMA);
  await barrier.driver.createTable();
  const server = createServer({ name: o.name ?? "notifier", registry: o.registry });
  server.add(NotifierDefinition, notifierHandlers(barrier, db));
  await server.listen(o.listen ?? "127.0.0.1:0");
  return { server, barrier, db, close: () => server.shutdown() };
}
