/**
 * The transfer example in one command, with nothing but Node and Debian's etcd:
 *
 *   node bin/run.js examples/transfer/main.ts                          # embedded store (PGlite)
 *   node bin/run.js examples/transfer/main.ts --postgres postgres://…  # every database on Postgres
 *   … --keep                                                           # stay up for `protomesh tx`
 *
 * Starts a private etcd, a coordinator, two banks and a notification service, each on its own
 * database (PGlite in this process, or with --postgres one database each on that server,
 * created when missing). Moves money from alice (bank-a) to bob (bank-b) with TCC and with a
 * saga, including one of each that fails and is rolled back; after each transfer that succeeded,
 * bank-a writes alice's statement line and sends a reliable message to the notifier in the same
 * local transaction. Prints the balances, the recorded notifications and the transactions.
 */
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { etcdRegistry, setDefaultDiscovery, startEmbeddedEtcd, type EmbeddedEtcd, type EtcdRegistry } from "protomesh";
import { createTxClient, createTxServer, embeddedStore, participant, postgresStore, type Participant, type TxClient, type TxServer } from "protomesh/transaction";
import { AccountDefinition, type AccountClient } from "../../gen/examples/transfer/v1/transfer_protomesh";
import { NotifierDefinition, type NotifierClient } from "../../gen/examples/transfer/notification/v1/notification_protomesh";
import type { Notification } from "../../gen/examples/transfer/notification/v1/notification";
import { startBank, type Bank } from "./bank";
import { startNotifier, type Notifier } from "./notifier";
import { ensureDatabases, openPool, PostgresUnavailableError, redactUrl, type Database } from "./database";

export const OPENING = { alice: 10_000, bob: 10_000 } as const;

/** The example's databases on a Postgres server (--postgres). */
export const DATABASES = { coordinator: "transfer_tx", bankA: "transfer_bank_a", bankB: "transfer_bank_b", notifier: "transfer_notifier" } as const;

export interface ExampleOptions {
  /** A Postgres server URL: the coordinator, both banks and the notifier each get a database on it. */
  postgres?: string;
}

/** Everything the example started, up and registered in its private etcd. */
export interface Example {
  readonly etcd: EmbeddedEtcd;
  readonly registry: EtcdRegistry;
  readonly coordinator: TxServer;
  readonly bankA: Bank;
  readonly bankB: Bank;
  readonly notifier: Notifier;
  readonly tx: TxClient;
  readonly a: Participant<AccountClient>;
  readonly b: Participant<AccountClient>;
  readonly notes: Participant<NotifierClient>;
  /** Where each service keeps its data, for the printout. */
  readonly storage: string;
  close(): Promise<void>;
}

export async function startExample(o: ExampleOptions = {}): Promise<Example> {
  // Postgres first: an unreachable server is reported before anything else starts.
  const urls = o.postgres ? await ensureDatabases(o.postgres, Object.values(DATABASES)) : undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const databaseOf = async (name: string): Promise<Database> => {
      if (urls) {
        const pool = await openPool(urls[name as keyof typeof urls]);
        cleanups.push(() => pool.end());
        return { pool };
      }
      const pglite = await PGlite.create();
      cleanups.push(() => pglite.close());
      return { pglite };
    };

    const etcd = await startEmbeddedEtcd();
    cleanups.push(() => etcd.stop());
    const registry = etcdRegistry({ endpoints: etcd.endpoints });
    cleanups.push(() => registry.close());
    setDefaultDiscovery(registry);
    cleanups.push(async () => setDefaultDiscovery(undefined));

    const store = urls ? await postgresStore(urls[DATABASES.coordinator]) : await embeddedStore();
    const coordinator = await createTxServer({ store, closeStore: true, pollIntervalMs: 200, defaults: { retryIntervalMs: 500, timeoutMs: 5000 }, server: { registry } });
    cleanups.push(() => coordinator.shutdown());
    await coordinator.listen();
    const bankA = await startBank({ name: "bank-a", database: await databaseOf(DATABASES.bankA), accounts: { alice: OPENING.alice }, registry });
    cleanups.push(() => bankA.close());
    const bankB = await startBank({ name: "bank-b", database: await databaseOf(DATABASES.bankB), accounts: { bob: OPENING.bob }, registry });
    cleanups.push(() => bankB.close());
    const notifier = await startNotifier({ name: "notifier", database: await databaseOf(DATABASES.notifier), registry });
    cleanups.push(() => notifier.close());

    const tx = createTxClient();
    const a = participant(AccountDefinition, "etcd:///bank-a");
    const b = participant(AccountDefinition, "etcd:///bank-b");
    const notes = participant(NotifierDefinition, "etcd:///notifier");
    cleanups.push(async () => {
      tx.close();
      for (const p of [a, b, notes]) p.close();
    });
    const storage = urls
      ? `Postgres at ${redactUrl(o.postgres!)}: databases ${Object.values(DATABASES).join(", ")}`
      : "embedded: the coordinator, bank-a, bank-b and the notifier each on its own PGlite, in memory";
    return { etcd, registry, coordinator, bankA, bankB, notifier, tx, a, b, notes, storage, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export interface Transfer {
  readonly what: string;
  readonly gid: string;
  readonly status: string;
  readonly amount: number;
}

export interface RunResult {
  readonly transfers: Transfer[];
  /** One reliable message per transfer that succeeded. */
  readonly messages: Array<{ gid: string; transfer: string; status: string }>;
  /** What the notifier recorded for this run's messages. */
  readonly notifications: Notification[];
  /** Recorded by earlier runs on the same databases (--postgres). */
  readonly earlierNotifications: number;
  readonly balances: { alice: number; bob: number };
}

/** Runs the transfers and the messages on a started example, telling `say` as it goes. */
export async function runTransfers(ex: Example, say: (line: string) => void = console.log): Promise<RunResult> {
  const { tx, a, b, notes } = ex;
  const cents = (n: number) => (n / 100).toFixed(2);
  const balances = async () => {
    const [x, y] = await Promise.all([a.client().balance({ account: "alice" }), b.client().balance({ account: "bob" })]);
    return { x, y };
  };
  const show = async (title: string) => {
    const { x, y } = await balances();
    say(`${title.padEnd(48)} alice ${cents(x.available).padStart(7)} (frozen ${x.frozen})   bob ${cents(y.available).padStart(7)} (incoming ${y.incoming})`);
  };
  const transfers: Transfer[] = [];

  say(`storage: ${ex.storage}`);
  await show("balances at the start:");

  const t1 = await tx.tcc(async (t) => {
    await t.call(a, "debit", { account: "alice", amount: 1500 });
    await t.call(b, "credit", { account: "bob", amount: 1500 });
  });
  transfers.push({ what: "TCC 15.00 alice → bob", gid: t1.outcome.gid, status: t1.outcome.status, amount: 1500 });
  await show(`TCC 15.00 alice → bob: ${t1.outcome.status}`);

  let t2gid = "";
  const t2 = await tx
    .tcc(async (t) => {
      t2gid = t.gid;
      await t.call(b, "credit", { account: "bob", amount: 99_999 });
      await t.call(a, "debit", { account: "alice", amount: 99_999 });
    })
    .then((r) => r.outcome.status, async () => (t2gid ? (await tx.get(t2gid)).status : "failed"));
  transfers.push({ what: "TCC 999.99 alice → bob (too much)", gid: t2gid, status: t2, amount: 99_999 });
  await show(`TCC 999.99 (too much, cancelled): ${t2}`);

  const s1 = await tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 700 }).step(b, "credit", "undoCredit", { account: "bob", amount: 700 }).submit();
  transfers.push({ what: "saga 7.00 alice → bob", gid: s1.gid, status: s1.status, amount: 700 });
  await show(`saga 7.00 alice → bob: ${s1.status}`);

  // Bob is credited first, then alice cannot pay: the coordinator undoes bob's credit.
  const s2 = await tx.saga().step(b, "credit", "undoCredit", { account: "bob", amount: 50_000 }).step(a, "debit", "undoDebit", { account: "alice", amount: 50_000 }).submit();
  transfers.push({ what: "saga 500.00 alice → bob (too much)", gid: s2.gid, status: s2.status, amount: 50_000 });
  await show(`saga 500.00 (too much, compensated): ${s2.status}`);

  // After each transfer that succeeded, bank-a writes alice's statement line and, in the same
  // local transaction, the message's barrier row: the notifier hears about the transfer if and
  // only if the line committed, however often the delivery has to be retried.
  say("\nreliable messages to the notifier (producer bank-a, with alice's statement line):");
  const messages: RunResult["messages"] = [];
  for (const t of transfers.filter((t) => t.status === "succeed")) {
    const msg = tx.message(ex.bankA.server.address!).add(notes, "transferDone", { transfer: t.gid, from: "alice", to: "bob", amount: t.amount });
    const { outcome } = await msg.commit(
      ex.bankA.barrier,
      (db) => db.query(`INSERT INTO statement (transfer, account, amount, memo) VALUES ($1, 'alice', $2, 'to bob')`, [t.gid, -t.amount]),
      { wait: true },
    );
    messages.push({ gid: outcome.gid, transfer: t.gid, status: outcome.status });
    say(`  ${outcome.gid}  about ${t.what}: ${outcome.status}`);
  }

  const all = (await notes.client().list({})).notifications;
  const ours = new Set(messages.map((m) => m.gid));
  const notifications = all.filter((n) => ours.has(n.messageGid));
  say("\nnotifications recorded by the notifier (its own database):");
  for (const n of notifications) say(`  ${n.messageGid}  ${n.text}`);
  if (all.length > notifications.length) say(`  (and ${all.length - notifications.length} from earlier runs)`);

  say("\ntransactions of this run (protomesh tx show GID):");
  for (const gid of [...transfers.map((t) => t.gid), ...messages.map((m) => m.gid)]) {
    const t = await tx.get(gid);
    say(`  ${t.gid}  ${t.mode.padEnd(4)} ${t.status.padEnd(7)} ${t.lastError.slice(0, 70)}`.trimEnd());
  }

  const { x, y } = await balances();
  say(`\nalice ${cents(x.available)} + bob ${cents(y.available)} = ${cents(x.available + y.available)} (opening total ${cents(OPENING.alice + OPENING.bob)})`);
  return { transfers, messages, notifications, earlierNotifications: all.length - notifications.length, balances: { alice: x.available, bob: y.available } };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { postgres: { type: "string" }, keep: { type: "boolean" } } });
  process.env.PROTOMESH_LOG_LEVEL ??= "warn"; // the framework's JSON logs (stderr) only when something is wrong
  let ex: Example;
  try {
    ex = await startExample({ postgres: values.postgres });
  } catch (err) {
    if (!(err instanceof PostgresUnavailableError)) throw err;
    console.error(`transfer example: ${err.message}`);
    process.exit(1);
  }
  try {
    await runTransfers(ex);
    if (values.keep) {
      console.log(`\n--keep: everything stays up; press Ctrl-C to stop. In another terminal:`);
      console.log(`  export ETCD_ENDPOINTS=${ex.etcd.endpoints.join(",")}`);
      console.log(`  node bin/protomesh.js tx list`);
      console.log(`  node bin/protomesh.js tx show GID`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
    }
  } finally {
    await ex.close();
  }
}

if (/examples[\\/]transfer[\\/]main\.ts$/.test(process.argv[1] ?? "")) main().catch((err) => {
  console.error(err);
  process.exit(1);
});
