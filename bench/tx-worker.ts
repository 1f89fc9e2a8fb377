/**
 * A process of the transactions scenario (`scenario-tx.ts`), driven over IPC: a bank (the
 * transfer example's Account service with its barrier, plus the same debit and credit without
 * a barrier for the no-coordinator baseline), or a coordinator (`createTxServer`). Each runs in
 * its own process, as deployed, so the caller, the coordinator and the banks do not share one
 * event loop.
 */
import { Pool } from "pg";
import { createServer, etcdRegistry, RpcError, Status, type Server } from "protomesh";
import { createTxServer, embeddedStore, postgresStore, type TxServer } from "protomesh/transaction";
import { AccountDefinition } from "../gen/examples/transfer/v1/transfer_protomesh";
import type { Leg } from "../gen/examples/transfer/v1/transfer";
import { accountHandlers } from "../examples/transfer/account-service";
import { startBank, type Bank } from "../examples/transfer/bank";
import { serveCommands } from "./ipc";

interface Common {
  etcd: string[];
  namespace: string;
}

let registry: ReturnType<typeof etcdRegistry> | undefined;
const closers: Array<() => Promise<unknown>> = [];

function registryOf(c: Common): ReturnType<typeof etcdRegistry> {
  registry ??= etcdRegistry({ endpoints: c.etcd, namespace: c.namespace });
  return registry;
}

serveCommands({
  /** The Account service on `pgUrl` as `name`, and as `directName` the same debit/credit as plain autocommit UPDATEs. */
  async bank(a: Common & { name: string; directName: string; pgUrl: string; accounts: Record<string, number> }) {
    const reg = registryOf(a);
    // Connections stay open between variants (pg closes idle ones after 10 s by default, and
    // reconnecting mid-round would be measured as the variant's cost).
    const pool = new Pool({ connectionString: a.pgUrl, max: 20, idleTimeoutMillis: 0 });
    pool.on("error", (err) => process.stderr.write(`${a.name}: idle Postgres connection failed: ${err.message}\n`));
    const bank: Bank = await startBank({ name: a.name, database: { pool }, accounts: a.accounts, registry: reg });
    const plain = (sql: string) => async (leg: Leg) => {
      const r = await pool.query(sql, [leg.account, leg.amount]);
      if (r.rowCount === 0) throw new RpcError(Status.ABORTED, `account ${leg.account}: no change`);
      return { applied: true };
    };
    const direct: Server = createServer({ name: a.directName, registry: reg });
    direct.add(AccountDefinition, {
      ...accountHandlers(bank.barrier, bank.db),
      debit: plain(`UPDATE account SET available = available - $2 WHERE id = $1 AND available >= $2`),
      credit: plain(`UPDATE account SET available = available + $2 WHERE id = $1`),
    });
    await direct.listen("127.0.0.1:0");
    // Closed in this order: both servers stop taking calls, then the pool ends (it waits for
    // connections still checked out by calls in progress).
    closers.push(() => direct.shutdown(), () => bank.close(), () => pool.end());
    return { pid: process.pid };
  },

  /** A coordinator named `name` on the Postgres store at `storeUrl`, or on the embedded store. */
  async coordinator(a: Common & { name: string; storeUrl?: string }) {
    const reg = registryOf(a);
    const store = a.storeUrl ? await postgresStore({ connectionString: a.storeUrl, max: 20, idleTimeoutMillis: 0 }) : await embeddedStore();
    const tx: TxServer = await createTxServer({ store, closeStore: true, discovery: reg, server: { name: a.name, registry: reg } });
    await tx.listen("127.0.0.1:0");
    closers.push(() => tx.shutdown());
    return { pid: process.pid };
  },

  /** This process's CPU time so far (user + system), µs. */
  cpu() {
    const u = process.cpuUsage();
    return { us: u.user + u.system };
  },

  async close() {
    for (const close of closers.splice(0)) await close().catch((err: unknown) => process.stderr.write(`closing: ${String(err)}\n`));
    await registry?.close();
    return {};
  },
});
