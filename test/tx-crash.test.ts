/**
 * Crash specs with real processes: coordinators, banks and a producer are separate processes
 * that get SIGKILLed; Postgres is stopped and restarted. After each: no money created or lost,
 * every transaction final, nothing left pending past its timeout.
 */
import * as path from "node:path";
import { expect } from "chai";
import { Pool } from "pg";
import { etcdRegistry, RpcError, Status, type EtcdRegistry } from "../index";
import { createTxClient, participant, type TxClient } from "../transaction";
import { AccountDefinition, type AccountClient } from "../gen/examples/transfer/v1/transfer_protomesh";
import type { Participant } from "../transaction/client/participant";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { startBankProc, startCoordinatorProc, startProc, type Proc } from "./helpers/tx-processes";
import { expectInvariant, waitAllFinal } from "./helpers/transfer-world";

const ROOT = path.join(__dirname, "..");

describe("transactions under crashes (real processes, real Postgres)", function () {
  this.timeout(180_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  const namespace = uniqueNamespace();
  const procs: Proc[] = [];
  let registry: EtcdRegistry;
  let tx: TxClient;
  let a: Participant<AccountClient>;
  let b: Participant<AccountClient>;
  let pools: Pool[];
  let urls: { store: string; a: string; b: string };
  let coordinators: Proc[];
  let banks: { a: Proc; b: Proc };

  const coordinator = (id: string) => startCoordinatorProc({ postgres: urls.store, endpoints: etcd.endpoints, namespace, name: "crash-tx", id }).then((p) => (procs.push(p), p));
  const bank = (name: "bank-a" | "bank-b", accounts?: string) => startBankProc({ postgres: name === "bank-a" ? urls.a : urls.b, endpoints: etcd.endpoints, namespace, name: `crash-${name}`, accounts }).then((p) => (procs.push(p), p));

  before(async function () {
    this.timeout(120_000);
    urls = { store: await pg.server.createDatabase("crash_tx"), a: await pg.server.createDatabase("crash_a"), b: await pg.server.createDatabase("crash_b") };
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace });
    const [c1, c2, ba, bb] = await Promise.all([coordinator("c1"), coordinator("c2"), bank("bank-a", "alice=100000"), bank("bank-b", "bob=100000")]);
    coordinators = [c1!, c2!];
    banks = { a: ba!, b: bb! };
    tx = createTxClient({ coordinator: "etcd:///crash-tx", client: { discovery: registry }, defaults: { timeoutMs: 4000, retryIntervalMs: 200, maxRetryIntervalMs: 1000 }, deadlineMs: 5000 });
    a = participant(AccountDefinition, "etcd:///crash-bank-a", { discovery: registry });
    b = participant(AccountDefinition, "etcd:///crash-bank-b", { discovery: registry });
    pools = [new Pool({ connectionString: urls.a, max: 2 }), new Pool({ connectionString: urls.b, max: 2 })];
    for (const p of pools) p.on("error", () => undefined);
    pg.beforeStop(async () => {
      tx.close();
      a.close();
      b.close();
      for (const p of procs) await p.kill("SIGKILL");
      for (const p of pools) await p.end().catch(() => undefined);
      await registry.close();
    });
  });

  /** One transfer of `cents` from alice to bob: TCC or saga, alternating; errors are the caller's, not the money's. */
  async function transfer(i: number, cents: number): Promise<void> {
    try {
      if (i % 2 === 0) {
        await tx.tcc(async (t) => {
          await t.call(a, "debit", { account: "alice", amount: cents });
          await t.call(b, "credit", { account: "bob", amount: cents });
        }, { wait: false });
      } else {
        await tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: cents }).step(b, "credit", "undoCredit", { account: "bob", amount: cents }).submit({ wait: false });
      }
    } catch {
      // A call to a dying coordinator or participant fails; the coordinator still finishes the transaction.
    }
  }

  async function settle(): Promise<void> {
    await waitAllFinal(urls.store, 60_000);
    await expectInvariant({ pools });
  }

  it("finishes every transaction after one coordinator instance is SIGKILLed in the middle of many", async () => {
    let started = 0;
    let killed = false;
    const runs = Array.from({ length: 40 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 15));
      started++;
      if (started === 15 && !killed) {
        killed = true;
        void coordinators[0]!.kill("SIGKILL");
      }
      await transfer(i, 10 + i);
    });
    await Promise.all(runs);
    expect(killed).to.equal(true);
    await settle();
    // The survivor (and only it) drove what was left; restart an instance for the next specs.
    coordinators[0] = await coordinator("c1-restarted");
  });

  it("confirms a TCC whose participant was SIGKILLed between Try and Confirm once the participant is back", async () => {
    let gid = "";
    const done = tx.tcc(async (t) => {
      gid = t.gid;
      await t.call(a, "debit", { account: "alice", amount: 700 });
      await t.call(b, "credit", { account: "bob", amount: 700 });
      await banks.b.kill("SIGKILL"); // after its Try committed, before any Confirm
    }, { wait: true });
    const { outcome } = await done;
    expect(outcome.status).to.equal("submitted"); // Confirm on bank-b is failing and will be retried
    banks.b = await bank("bank-b");
    await settle();
    expect((await tx.get(gid)).status).to.equal("succeed");
    expect((await tx.get(gid)).branches.find((x) => x.op === "confirm" && x.branchId === "02")!.attempts).to.be.at.least(2);
  });

  it("survives Postgres being down longer than the retry interval: transactions resume and finish when it is back", async () => {
    const gids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const s = tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 5 }).step(b, "credit", "undoCredit", { account: "bob", amount: 5 });
      gids.push(s.gid);
      await s.submit({ wait: false }).catch(() => undefined);
    }
    await pg.server.stop();
    const during = await Promise.allSettled([transfer(100, 1), tx.get(gids[0]!)]);
    await new Promise((r) => setTimeout(r, 1500)); // > retry interval (200 ms) several times over
    // The coordinator says its store is unavailable (and that nothing was done: try again).
    expect(during[1].status).to.equal("rejected");
    const refusal = RpcError.from((during[1] as PromiseRejectedResult).reason);
    expect(refusal.code, refusal.message).to.equal(Status.UNAVAILABLE);
    expect(refusal.rawMessage).to.match(/^transaction store unavailable: \S/);
    await pg.server.start();
    await settle();
    for (const gid of gids) expect(["succeed", "failed"]).to.include((await tx.get(gid)).status);
  });

  it("settles a reliable message whose producer died between prepare and submit, by query-back", async () => {
    const producer = (stage: string) =>
      startProc(
        [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "test", "fixtures", "tx-producer.ts"), "--postgres", urls.a, "--coordinator", "etcd:///crash-tx", "--producer", "etcd:///crash-bank-a", "--subscriber", "etcd:///crash-bank-b", "--stage", stage, "--amount", "333"],
        { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: namespace },
        stage === "inside" ? /^inside$/ : /^committed$/,
      ).then((p) => (procs.push(p), p));
    const committed = await producer("committed");
    const gid1 = (await committed.line(/^gid /)).slice(4);
    await committed.kill("SIGKILL");
    const inside = await producer("inside");
    const gid2 = (await inside.line(/^gid /)).slice(4);
    await inside.kill("SIGKILL");
    await settle();
    expect((await tx.get(gid1)).status).to.equal("succeed"); // committed locally → delivered
    expect((await tx.get(gid2)).status).to.equal("failed"); // rolled back with the process → dropped
  });
});
