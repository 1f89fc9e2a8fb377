/**
 * A coordinator store that is up but refuses writes (its role lost INSERT/UPDATE/DELETE, as
 * after a failover to a read-only standby or a privilege mistake): callers get UNAVAILABLE
 * saying so, nothing is half-written, and work resumes once writes are allowed again.
 */
import { expect } from "chai";
import { Pool } from "pg";
import { RpcError, Status } from "../index";
import { branchMetadata, createTxServer, pgBarrier, postgresStore } from "../transaction";
import { captureLogger, type CapturedLogger } from "./helpers/capture-logger";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { expectInvariant, FAST, startWorld, type World } from "./helpers/transfer-world";

describe("transactions: a coordinator store that refuses writes (real Postgres)", function () {
  this.timeout(120_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;
  let admin: Pool;
  let logger: CapturedLogger;

  /** As the superuser, on the store's database. */
  const asAdmin = (sql: string) => admin.query(sql);

  before(async () => {
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "sw");
    pg.beforeStop(async () => {
      await w.close();
      await admin.end().catch(() => undefined);
    });
    // The store connects as its own role, owner of its database (so of the tables it creates).
    admin = new Pool({ connectionString: w.storeUrl, max: 1 });
    admin.on("error", () => undefined);
    await asAdmin("CREATE ROLE sw_store LOGIN");
    await asAdmin("ALTER DATABASE sw_tx OWNER TO sw_store");
    logger = captureLogger();
    const store = await postgresStore(`postgres://sw_store@127.0.0.1:${pg.server.port}/sw_tx`);
    const c = await createTxServer({ store, closeStore: true, logger, pollIntervalMs: 100, discovery: w.registry, defaults: FAST, server: { name: "sw-tx", registry: w.registry } });
    await c.listen("127.0.0.1:0");
    w.coordinators.push(c);
  });

  it("answers Submit, Prepare and RegisterBranch with UNAVAILABLE saying the store refuses writes, stores nothing, and resumes once writes are allowed", async () => {
    const co = w.tx.coordinator;
    const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => RpcError.from(e));
    const debit = w.a.method("debit");
    const undoDebit = w.a.method("undoDebit");
    const credit = w.b.method("credit");
    const undoCredit = w.b.method("undoCredit");
    const confirmDebit = w.a.method("confirmDebit");
    const cancelDebit = w.a.method("cancelDebit");
    const confirmCredit = w.b.method("confirmCredit");
    const cancelCredit = w.b.method("cancelCredit");
    const leg = (account: string, amount: number) => ({ account, amount });
    const tccOps = (id: string, confirm: typeof credit, cancel: typeof credit, l: { account: string; amount: number }) => [
      { branchId: id, op: "confirm", target: confirm === confirmDebit ? w.a.target : w.b.target, method: confirm.path, payload: confirm.requestSerialize(l) },
      { branchId: id, op: "cancel", target: cancel === cancelDebit ? w.a.target : w.b.target, method: cancel.path, payload: cancel.requestSerialize(l) },
    ];
    const suffix = Date.now().toString(36);
    const gids = { saga: `sw-saga-${suffix}`, msg: `sw-msg-${suffix}`, tcc: `sw-tcc-${suffix}`, opened: `sw-open-${suffix}`, due: `sw-due-${suffix}` };
    const sagaRequest = {
      gid: gids.saga,
      mode: "saga",
      wait: true,
      branches: [
        { branchId: "01", op: "action", target: w.a.target, method: debit.path, payload: debit.requestSerialize(leg("alice", 11)) },
        { branchId: "01", op: "compensate", target: w.a.target, method: undoDebit.path, payload: undoDebit.requestSerialize(leg("alice", 11)) },
        { branchId: "02", op: "action", target: w.b.target, method: credit.path, payload: credit.requestSerialize(leg("bob", 11)) },
        { branchId: "02", op: "compensate", target: w.b.target, method: undoCredit.path, payload: undoCredit.requestSerialize(leg("bob", 11)) },
      ],
    };
    const msgRequest = { gid: gids.msg, mode: "msg", queryTarget: w.banks[0]!.server.address!, branches: [{ branchId: "01", op: "action", target: w.b.target, method: credit.path, payload: credit.requestSerialize(leg("bob", 7)) }] };
    const alice = { available: 0 };

    // A TCC opened (and its first Try run) while writes are allowed; it has a long timeout.
    await co.registerBranch({ gid: gids.tcc, open: true, options: { timeoutMs: 60_000 }, ops: tccOps("01", confirmDebit, cancelDebit, leg("alice", 30)) });
    await w.a.client().tryDebit(leg("alice", 30), { metadata: branchMetadata({ mode: "tcc", gid: gids.tcc, branchId: "01", op: "try" }) });
    alice.available = (await w.a.client().balance({ account: "alice" })).available;
    // One that falls due during the refusal (it times out): the engine must claim it to cancel it.
    await co.registerBranch({ gid: gids.due, open: true, options: { timeoutMs: 300 }, ops: tccOps("01", confirmDebit, cancelDebit, leg("alice", 2)) });

    await asAdmin("REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM sw_store");
    try {
      const refused = [
        await failure(co.submit(sagaRequest)),
        await failure(co.prepare(msgRequest)),
        await failure(co.registerBranch({ gid: gids.tcc, ops: tccOps("02", confirmCredit, cancelCredit, leg("bob", 30)) })),
        await failure(co.registerBranch({ gid: gids.opened, open: true, ops: tccOps("01", confirmDebit, cancelDebit, leg("alice", 1)) })),
        await failure(co.submit({ gid: gids.tcc, wait: true })),
      ];
      for (const err of refused) {
        expect(err?.code, err?.message).to.equal(Status.UNAVAILABLE);
        expect(err!.rawMessage).to.match(/^transaction store refuses writes \(SQLSTATE 42501\): permission denied for table protomesh_tx_/);
      }
      // Nothing half-written: reads still work, and show nothing of the refused calls.
      for (const gid of [gids.saga, gids.msg, gids.opened]) expect((await failure(co.get({ gid })))?.code, gid).to.equal(Status.NOT_FOUND);
      const tcc = await co.get({ gid: gids.tcc });
      expect(tcc.status).to.equal("prepared");
      expect(tcc.branches.map((b) => `${b.branchId}/${b.op}`)).to.deep.equal(["01/confirm", "01/cancel"]);
      const counts = await asAdmin(`SELECT (SELECT count(*) FROM protomesh_tx_branch WHERE gid = '${gids.tcc}')::int AS branches, (SELECT branch_count FROM protomesh_tx_global WHERE gid = '${gids.tcc}') AS counter, (SELECT count(*) FROM protomesh_tx_global)::int AS transactions`);
      expect(counts.rows[0]).to.deep.equal({ branches: 2, counter: 2, transactions: 2 });
      // The engine cannot claim the one that fell due, and says why — once, not at every poll.
      const refusing = () => logger.matching("transaction store refuses writes; retrying").length;
      const until = Date.now() + 10_000;
      while (refusing() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500)); // several more polls (every 100 ms)
      expect(refusing()).to.equal(1);
      expect(logger.matching("transaction store reachable again")).to.have.length(0);
      expect((await co.get({ gid: gids.due })).status).to.equal("prepared");
    } finally {
      await asAdmin("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sw_store");
    }

    // Writes allowed again: the same calls go through, and every transaction finishes.
    const saga = await co.submit(sagaRequest);
    expect(saga.status).to.equal("succeed");
    await co.prepare(msgRequest);
    await pgBarrier(w.pools[0]!).prepareMessage(gids.msg, (db) => db.query("UPDATE account SET available = available - 7 WHERE id = 'alice'"));
    expect((await co.submit({ gid: gids.msg, wait: true })).status).to.equal("succeed");
    await co.registerBranch({ gid: gids.tcc, ops: tccOps("02", confirmCredit, cancelCredit, leg("bob", 30)) });
    await w.b.client().tryCredit(leg("bob", 30), { metadata: branchMetadata({ mode: "tcc", gid: gids.tcc, branchId: "02", op: "try" }) });
    expect((await co.submit({ gid: gids.tcc, wait: true })).status).to.equal("succeed");
    await co.registerBranch({ gid: gids.opened, open: true, ops: tccOps("01", confirmDebit, cancelDebit, leg("alice", 1)) });
    expect((await co.abort({ gid: gids.opened, wait: true })).status).to.equal("failed");
    expect((await w.a.client().balance({ account: "alice" })).available).to.equal(alice.available - 11 - 7);
    // The engine is back too: the one that fell due is cancelled (it timed out) and the log says so.
    const until = Date.now() + 20_000;
    while ((await co.get({ gid: gids.due })).status !== "failed" && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect((await co.get({ gid: gids.due })).lastError).to.match(/timed out/);
    expect(logger.matching("transaction store reachable again")).to.have.length(1);
    await expectInvariant(w);
  });
});
