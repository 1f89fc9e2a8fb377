/**
 * The transfer example in one command, with nothing but Node and Debian's etcd:
 *
 *   node bin/run.js examples/transfer/main.ts                        # embedded store (PGlite)
 *   node bin/run.js examples/transfer/main.ts --postgres postgres://… # coordinator on Postgres
 *
 * Starts a private etcd, a coordinator, two banks (each on its own in-process Postgres) and a
 * notification service; moves money with TCC, a saga, a failing saga and a reliable message;
 * notifies; prints the balances and the transactions.
 */
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { createServer, etcdRegistry, setDefaultDiscovery, startEmbeddedEtcd } from "protomesh";
import { createTxClient, createTxServer, embeddedStore, participant, postgresStore } from "protomesh/transaction";
import { AccountDefinition, NotificationsDefinition } from "../../gen/examples/transfer/v1/transfer_protomesh";
import { startBank } from "./bank";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { postgres: { type: "string" } } });
  const etcd = await startEmbeddedEtcd();
  const registry = etcdRegistry({ endpoints: etcd.endpoints, ttlSeconds: 2 });
  setDefaultDiscovery(registry);

  const store = values.postgres ? await postgresStore(values.postgres) : await embeddedStore();
  const coordinator = await createTxServer({ store, closeStore: true, pollIntervalMs: 200, defaults: { retryIntervalMs: 500, timeoutMs: 5000 }, server: { registry } });
  await coordinator.listen();
  const bankA = await startBank({ name: "bank-a", database: { pglite: await PGlite.create() }, accounts: { alice: 10_000 }, registry });
  const bankB = await startBank({ name: "bank-b", database: { pglite: await PGlite.create() }, accounts: { bob: 10_000 }, registry });
  const notifications = createServer({ name: "notifications", registry });
  notifications.add(NotificationsDefinition, {
    async transferDone(n) {
      console.log(`  notification: ${n.from} → ${n.to}: ${n.amount} cents`);
      return {};
    },
  });
  await notifications.listen("127.0.0.1:0");

  const tx = createTxClient();
  const a = participant(AccountDefinition, "etcd:///bank-a");
  const b = participant(AccountDefinition, "etcd:///bank-b");
  const notes = participant(NotificationsDefinition, "etcd:///notifications");
  const show = async (title: string) => {
    const [x, y] = await Promise.all([a.client().balance({ account: "alice" }), b.client().balance({ account: "bob" })]);
    console.log(`${title.padEnd(44)} alice ${x.available} (frozen ${x.frozen})   bob ${y.available} (incoming ${y.incoming})`);
  };

  await show("opening balances:");
  const t1 = await tx.tcc(async (t) => {
    await t.call(a, "debit", { account: "alice", amount: 1500 });
    await t.call(b, "credit", { account: "bob", amount: 1500 });
  });
  await show(`TCC 15.00 alice → bob: ${t1.outcome.status}`);
  const t2 = await tx.tcc(async (t) => {
    await t.call(b, "credit", { account: "bob", amount: 99_999 });
    await t.call(a, "debit", { account: "alice", amount: 99_999 });
  }).catch((err: Error) => ({ outcome: { status: `failed (${err.message})` } }));
  await show(`TCC 999.99 (too much): ${t2.outcome.status}`);
  const s1 = await tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 700 }).step(b, "credit", "undoCredit", { account: "bob", amount: 700 }).submit();
  await show(`saga 7.00 alice → bob: ${s1.status}`);
  const s2 = await tx.saga().step(b, "credit", "undoCredit", { account: "bob", amount: 50_000 }).step(a, "debit", "undoDebit", { account: "alice", amount: 50_000 }).submit();
  await show(`saga 500.00 (too much, compensated): ${s2.status}`);
  const m = await tx.message(bankA.server.address!).add(b, "credit", { account: "bob", amount: 300 }).commit(bankA.barrier, (db) => db.query("UPDATE account SET available = available - 300 WHERE id = 'alice'"), { wait: true });
  await show(`message 3.00 alice → bob: ${m.outcome.status}`);
  const n = await tx.notify(notes, "transferDone", { from: "alice", to: "bob", amount: 300 }, { wait: true });
  console.log(`notification: ${n.status}`);

  const list = await tx.coordinator.list({ limit: 10 });
  console.log("\ntransactions (protomesh tx list):");
  for (const t of list.transactions) console.log(`  ${t.gid}  ${t.mode.padEnd(6)} ${t.status.padEnd(9)} ${t.lastError.slice(0, 70)}`);

  tx.close();
  for (const p of [a, b, notes]) p.close();
  await notifications.shutdown();
  await bankA.close();
  await bankB.close();
  await coordinator.shutdown();
  await registry.close();
  await etcd.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
