/**
 * The transfer example wired for specs: etcd, Postgres (a coordinator database and one per
 * bank), two banks and coordinators in this process, and the invariant check.
 */
import { Pool } from "pg";
import { expect } from "chai";
import { createServer, etcdRegistry, type EtcdRegistry, type Server } from "../../index";
import { setDefaultDiscovery } from "../../registry/etcd/resolver";
import { createTxClient, createTxServer, participant, postgresStore, type TxClient, type TxServer, type TxServerOptions } from "../../transaction";
import { AccountDefinition, NotificationsDefinition, type AccountClient, type NotificationsClient, type NotificationsHandlers } from "../../gen/examples/transfer/v1/transfer_protomesh";
import { startBank, type Bank } from "../../examples/transfer/bank";
import type { PostgresServer } from "./postgres";
import type { Participant } from "../../transaction/client/participant";

export const OPENING = { "bank-a": { alice: 100_000 }, "bank-b": { bob: 100_000 } } as const;
export const TOTAL = 200_000;

export interface World {
  registry: EtcdRegistry;
  pools: Pool[];
  coordinators: TxServer[];
  banks: Bank[];
  tx: TxClient;
  a: Participant<AccountClient>;
  b: Participant<AccountClient>;
  notes: Participant<NotificationsClient>;
  notifications: Server;
  received: Array<{ from: string; amount: number }>;
  /** What the notification receiver does with each call. */
  notifyBehaviour: NotificationsHandlers["transferDone"];
  storeUrl: string;
  bankUrls: { a: string; b: string };
  startCoordinator(o?: Partial<TxServerOptions>): Promise<TxServer>;
  close(): Promise<void>;
}

/** Fast timings for specs: retries every 100 ms, prepared transactions time out after 3 s. */
export const FAST = { timeoutMs: 3000, retryIntervalMs: 100, maxRetryIntervalMs: 400, requestTimeoutMs: 2000 };

export async function startWorld(pg: PostgresServer, endpoints: string[], namespace: string, prefix: string): Promise<World> {
  const registry = etcdRegistry({ endpoints, namespace, ttlSeconds: 2 });
  setDefaultDiscovery(registry);
  const storeUrl = await pg.createDatabase(`${prefix}_tx`);
  const bankUrls = { a: await pg.createDatabase(`${prefix}_bank_a`), b: await pg.createDatabase(`${prefix}_bank_b`) };
  const pools = [new Pool({ connectionString: bankUrls.a, max: 10 }), new Pool({ connectionString: bankUrls.b, max: 10 })];
  for (const p of pools) p.on("error", () => undefined);
  const banks = [
    await startBank({ name: `${prefix}-bank-a`, database: { pool: pools[0]! }, accounts: OPENING["bank-a"], registry }),
    await startBank({ name: `${prefix}-bank-b`, database: { pool: pools[1]! }, accounts: OPENING["bank-b"], registry }),
  ];
  const world: World = {
    registry,
    pools,
    coordinators: [],
    banks,
    tx: createTxClient({ coordinator: `etcd:///${prefix}-tx`, client: { discovery: registry }, defaults: FAST }),
    a: participant(AccountDefinition, `etcd:///${prefix}-bank-a`, { discovery: registry }),
    b: participant(AccountDefinition, `etcd:///${prefix}-bank-b`, { discovery: registry }),
    notes: participant(NotificationsDefinition, `etcd:///${prefix}-notes`, { discovery: registry }),
    notifications: createServer({ name: `${prefix}-notes`, registry }),
    received: [],
    notifyBehaviour: async () => ({}),
    storeUrl,
    bankUrls,
    async startCoordinator(o = {}) {
      const store = await postgresStore(storeUrl);
      const c = await createTxServer({ store, closeStore: true, pollIntervalMs: 100, discovery: registry, defaults: FAST, server: { name: `${prefix}-tx`, registry }, ...o });
      await c.listen("127.0.0.1:0");
      world.coordinators.push(c);
      return c;
    },
    async close() {
      world.tx.close();
      for (const p of [world.a, world.b, world.notes]) p.close();
      for (const c of world.coordinators.splice(0)) await c.shutdown().catch(() => undefined);
      for (const b of banks) await b.close().catch(() => undefined);
      await world.notifications.shutdown().catch(() => undefined);
      for (const p of pools) await p.end().catch(() => undefined);
      await registry.close();
      setDefaultDiscovery(undefined);
    },
  };
  world.notifications.add(NotificationsDefinition, { transferDone: (req, ctx) => world.notifyBehaviour(req, ctx) });
  await world.notifications.listen("127.0.0.1:0");
  return world;
}

/** Sums every account of both banks: available + frozen (incoming is not yet anyone's). */
export async function moneyOf(pools: Pool[]): Promise<{ total: number; frozen: number; incoming: number }> {
  let total = 0;
  let frozen = 0;
  let incoming = 0;
  for (const p of pools) {
    const r = await p.query<{ a: string; f: string; i: string }>("SELECT coalesce(sum(available),0) AS a, coalesce(sum(frozen),0) AS f, coalesce(sum(incoming),0) AS i FROM account");
    total += Number(r.rows[0]!.a) + Number(r.rows[0]!.f);
    frozen += Number(r.rows[0]!.f);
    incoming += Number(r.rows[0]!.i);
  }
  return { total, frozen, incoming };
}

/** Waits until every transaction in the store is final (or throws after `timeoutMs`). */
export async function waitAllFinal(storeUrl: string, timeoutMs: number): Promise<void> {
  const pool = new Pool({ connectionString: storeUrl, max: 1 });
  pool.on("error", () => undefined);
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await pool.query<{ n: string }>("SELECT count(*) AS n FROM protomesh_tx_global WHERE status IN ('prepared','submitted','aborting')").catch(() => ({ rows: [{ n: "-1" }] }));
      if (r.rows[0]!.n === "0") return;
      if (Date.now() > until) {
        const left = await pool.query("SELECT gid, mode, status, last_error, next_at FROM protomesh_tx_global WHERE status IN ('prepared','submitted','aborting') LIMIT 5").catch(() => ({ rows: [] }));
        throw new Error(`transactions still unfinished after ${timeoutMs} ms: ${JSON.stringify(left.rows)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await pool.end();
  }
}

/** The transfer invariant: no money created or lost, nothing frozen or incoming once all is final. */
export async function expectInvariant(w: Pick<World, "pools">): Promise<void> {
  const m = await moneyOf(w.pools);
  expect(m).to.deep.equal({ total: TOTAL, frozen: 0, incoming: 0 });
}
