import { expect } from "chai";
import { Pool } from "pg";
import { RpcError, Status } from "../index";
import { createTxClient, pgBarrier, TxOutcomeUnknownError } from "../transaction";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { startCommitCutProxy, type CommitCutProxy } from "./helpers/pg-commit-cut";
import { expectInvariant, FAST, startWorld, type World } from "./helpers/transfer-world";

async function statusOf(w: World, gid: string): Promise<string> {
  return (await w.tx.get(gid)).status;
}

async function waitStatus(w: World, gid: string, status: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await statusOf(w, gid)) !== status) {
    if (Date.now() > until) throw new Error(`transaction ${gid} is ${await statusOf(w, gid)}, not ${status}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("transactions: a reliable message whose producer cannot tell whether its COMMIT went through (real Postgres)", function () {
  this.timeout(120_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;
  let proxy: CommitCutProxy;
  let producerPool: Pool;

  before(async () => {
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "mc");
    await w.startCoordinator();
    // The producer (bank A's database) reached through a proxy that can cut a connection
    // right after the server answered its COMMIT.
    proxy = await startCommitCutProxy(pg.server.port);
    producerPool = new Pool({ connectionString: proxy.urlOf("mc_bank_a"), max: 2 });
    producerPool.on("error", () => undefined);
    pg.beforeStop(async () => {
      await producerPool.end().catch(() => undefined);
      await proxy.close();
      await w.close();
    });
  });

  const alice = async () => Number((await w.pools[0]!.query<{ available: string }>("SELECT available FROM account WHERE id = 'alice'")).rows[0]!.available);
  const bob = async () => Number((await w.pools[1]!.query<{ available: string }>("SELECT available FROM account WHERE id = 'bob'")).rows[0]!.available);

  it("keeps the message when the COMMIT reached the database but its answer was lost, and delivers it by query-back", async () => {
    const barrier = pgBarrier(producerPool);
    const [a0, b0] = [await alice(), await bob()];
    const msg = w.tx.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 120 });
    proxy.cutAfterNextCommit();
    const err = await msg.commit(barrier, (db) => db.query("UPDATE account SET available = available - 120 WHERE id = 'alice'")).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(proxy.cuts).to.equal(1);
    expect(err).to.be.instanceOf(TxOutcomeUnknownError);
    expect((err as TxOutcomeUnknownError).gid).to.equal(msg.gid);
    expect(err!.message).to.match(/whether it committed is unknown/).and.match(/settles it by query-back/);
    // The database did commit: the change and the barrier row are there.
    expect(await alice()).to.equal(a0 - 120);
    // Not aborted: still prepared, until the coordinator's query-back (after the 3 s timeout) finds the row.
    expect(await statusOf(w, msg.gid)).to.equal("prepared");
    await waitStatus(w, msg.gid, "succeed", 20_000);
    expect(await bob()).to.equal(b0 + 120);
    await expectInvariant(w);
  });

  it("still drops the message at once when the business code throws, or when a query-back rolled it back first", async () => {
    const barrier = pgBarrier(producerPool);
    const a0 = await alice();
    const failing = w.tx.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 1 });
    const err = await failing
      .commit(barrier, async (db) => {
        await db.query("UPDATE account SET available = available - 1 WHERE id = 'alice'");
        throw new Error("local business failed");
      })
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.equal("local business failed");
    expect(err).not.to.be.instanceOf(TxOutcomeUnknownError);
    expect(await statusOf(w, failing.gid)).to.equal("failed");

    // A query-back that came first (the producer was slower than the timeout) decided "rolled
    // back": the barrier refuses the late local transaction, and the message is dropped at once.
    const raced = w.tx.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 1 });
    expect(await barrier.queryPrepared(raced.gid)).to.equal("rolledback");
    const racedErr = await raced
      .commit(barrier, async (db) => {
        await db.query("UPDATE account SET available = available - 1 WHERE id = 'alice'");
      })
      .then(() => undefined, (e: unknown) => RpcError.from(e));
    expect(racedErr?.code).to.equal(Status.ABORTED);
    expect(racedErr?.rawMessage).to.match(/already rolled back by a query-back/);
    expect(await statusOf(w, raced.gid)).to.equal("failed");
    expect(await alice()).to.equal(a0);
    await expectInvariant(w);
  });
  it("answers TxOutcomeUnknownError when the Submit fails after the local transaction committed, and a coordinator brought back delivers the message", async () => {
    const barrier = pgBarrier(producerPool);
    const [a0, b0] = [await alice(), await bob()];
    // A client that reaches the coordinator by its address: once that one stops, Submit is refused at once.
    const co = w.coordinators[0]!;
    const port = co.server.address!.split(":").pop();
    const direct = createTxClient({ coordinator: `127.0.0.1:${port}`, defaults: FAST });
    try {
      const msg = direct.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 70 });
      const err = await msg
        .commit(barrier, async (db) => {
          await db.query("UPDATE account SET available = available - 70 WHERE id = 'alice'");
          // Prepared; the coordinator goes away before the local transaction commits and Submit is sent.
          w.coordinators.splice(w.coordinators.indexOf(co), 1);
          await co.shutdown();
        })
        .then(() => undefined, (e: unknown) => e as Error);
      expect(err).to.be.instanceOf(TxOutcomeUnknownError);
      expect((err as TxOutcomeUnknownError).gid).to.equal(msg.gid);
      expect(err!.message).to.match(/committed but the Submit to the coordinator failed/).and.match(/prepared/).and.match(/settles it by query-back/);
      expect(RpcError.from((err as Error & { cause?: unknown }).cause).code).to.equal(Status.UNAVAILABLE);
      // The local change committed; the message waits, prepared, for a coordinator.
      expect(await alice()).to.equal(a0 - 70);
      const back = await w.startCoordinator();
      const again = createTxClient({ coordinator: back.server.address! });
      try {
        expect((await again.get(msg.gid)).status).to.equal("prepared");
        const until = Date.now() + 20_000;
        while ((await again.get(msg.gid)).status !== "succeed" && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
        expect((await again.get(msg.gid)).status).to.equal("succeed");
      } finally {
        again.close();
      }
      expect(await bob()).to.equal(b0 + 70);
      await expectInvariant(w);
    } finally {
      direct.close();
    }
  });
});
