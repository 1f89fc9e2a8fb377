/**
 * A bank process: the Account service on its own database, registered as `--name` in etcd,
 * also answering message query-backs (TxProducer) from its barrier.
 *
 *   node bin/run.js examples/transfer/bank.ts --name bank-a --postgres postgres://…/bank_a --accounts alice=1000
 *
 * Without --postgres it keeps its accounts in PGlite, in memory.
 */
import { parseArgs } from "node:util";
import { createServer, etcdRegistry, type Registrar, type Server } from "protomesh";
import { queryPreparedHandler, TxProducerDefinition, type Barrier } from "protomesh/transaction";
import { AccountDefinition } from "../../gen/examples/transfer/v1/transfer_protomesh";
import { ACCOUNT_SCHEMA, accountHandlers, STATEMENT_SCHEMA, type Queryable } from "./account-service";
import { barrierOn, openPool, type Database } from "./database";

export interface Bank {
  readonly server: Server;
  readonly barrier: Barrier<Queryable>;
  /** Plain queries on the bank's database (outside any barrier). */
  readonly db: Queryable;
  close(): Promise<void>;
}

export interface BankOptions {
  name: string;
  /** A `pg` pool, or a PGlite database; the bank creates its tables in it. */
  database: Database;
  /** Opening balances, in cents. */
  accounts?: Record<string, number>;
  registry?: Registrar;
  listen?: string;
}

export async function startBank(o: BankOptions): Promise<Bank> {
  const { barrier, db } = barrierOn(o.database);
  await db.query(ACCOUNT_SCHEMA);
  await db.query(STATEMENT_SCHEMA);
  await barrier.driver.createTable();
  for (const [id, cents] of Object.entries(o.accounts ?? {})) {
    await db.query(`INSERT INTO account (id, available) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [id, cents]);
  }
  const server = createServer({ name: o.name, registry: o.registry });
  server.add(AccountDefinition, accountHandlers(barrier, db));
  server.add(TxProducerDefinition, queryPreparedHandler(barrier));
  await server.listen(o.listen ?? "127.0.0.1:0");
  return {
    server,
    barrier,
    db,
    close: () => server.shutdown(),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: "string" }, postgres: { type: "string" }, accounts: { type: "string" }, listen: { type: "string" } } });
  if (!values.name) throw new Error("--name is required");
  const accounts = Object.fromEntries((values.accounts ?? "").split(",").filter(Boolean).map((kv) => {
    const [k, v] = kv.split("=");
    return [k!, Number(v)];
  }));
  const registry = etcdRegistry({ ttlSeconds: 2 });
  let database: BankOptions["database"];
  if (values.postgres) {
    database = { pool: await openPool(values.postgres) };
  } else {
    const { PGlite } = await import("@electric-sql/pglite");
    database = { pglite: await PGlite.create() };
  }
  const bank = await startBank({ name: values.name, database, accounts, registry, listen: values.listen });
  process.stdout.write(`ready ${bank.server.address}\n`);
  const stop = async () => {
    await bank.close();
    await registry.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

if (/examples[\\/]transfer[\\/]bank\.ts$/.test(process.argv[1] ?? "")) main().catch((err) => {
  console.error(err);
  process.exit(1);
});
