/**
 * Crash specs with real processes: coordinators, banks and a producer are separate processes
 * that get SIGKILLed; Postgres is stopped and restarted. After each: no money created or lost,
 * every transaction final, nothing left pending past its timeout.
 */
import * as path from "node:path";
import { expect } from "chai";
import { Pool } from "pg";
import { createServer, etcdRegistry, RpcError, Status, type EtcdRegistry } from "../index";
import { branchCallOf, branchMetadata, createTxClient, participant, type TxClient } from "../transaction";
import { AccountDefinition, type AccountClient, type AccountHandlers } from "../gen/examples/transfer/v1/transfer_protomesh";
import type { Participant } from "../transaction/client/participant";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { startBankProc, startCoordinatorProc, startProc, type Proc } from "./helpers/tx-processes";
import { expectInvariant, waitAllFinal } from "./helpers/transfer-world";

const ROOT = path.join(__dirname, "..");

/**
 * How long after its timeout a transaction may still be unfinished (or after what it waited
 * for came back: a participant, the store): the lease of a dead owner (the coordinators'
 * --request-timeout-ms 2000 plus 1 s) plus their longest retry wait (--max-retry-interval-ms
 * 1000). Everything else — a poll (100 ms), a round's calls — fits in the lease's second.
 */
const SLACK_MS = 3000 + 1000;
const UNFINISHED_SQL = "status IN ('prepared', 'submitted', 'aborting')";

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
  /** On the coordinators' store, to read what they wrote (owners, times). */
  let storePool: Pool;
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
    storePool = new Pool({ connectionString: urls.store, max: 1 });
    for (const p of [...pools, storePool]) p.on("error", () => undefined);
    pg.beforeStop(async () => {
      tx.close();
      a.close();
      b.close();
      for (const p of procs) await p.kill("SIGKILL");
      for (const p of [...pools, storePool]) await p.end().catch(() => undefined);
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

  /**
   * Waits until every transaction is final, checks the money, and checks that each one begun
   * since `since` finished no later than its timeout — or `backAt`, when what it waited for came
   * back, if later — plus SLACK_MS: nothing was left pending past its timeout.
   */
  async function settle(since: number, backAt = 0): Promise<void> {
    await waitAllFinal(urls.store, 60_000);
    await expectInvariant({ pools });
    const rows = (await storePool.query<{ gid: string; status: string; timeout_at: string; finished_at: string }>("SELECT gid, status, timeout_at, finished_at FROM protomesh_tx_global WHERE created_at >= $1", [since])).rows;
    expect(rows.length).to.be.greaterThan(0);
    const late = rows
      .map((r) => ({ gid: r.gid, status: r.status, pastDeadlineMs: Number(r.finished_at) - Math.max(Number(r.timeout_at), backAt) }))
      .filter((r) => r.status === "succeed" || r.status === "failed")
      .filter((r) => r.pastDeadlineMs > SLACK_MS);
    expect(late, `finished more than ${SLACK_MS} ms past their timeout`).to.deep.equal([]);
    expect(rows.filter((r) => Number(r.finished_at) === 0)).to.deep.equal([]);
  }

  it("finishes every transaction after one coordinator instance is SIGKILLed in the middle of many, including those it owned", async () => {
    const since = Date.now();
    // Callers that opened a TCC on c1 itself, ran its Try and died: c1 owns these (prepared,
    // until their 4 s timeout) when it is killed, so only another instance can finish them.
    const c1 = createTxClient({ coordinator: /serving on (\S+)/.exec(coordinators[0]!.readyLine)![1]!, deadlineMs: 5000 });
    const orphans: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const gid = `orphan-${i}-${since.toString(36)}`;
        const confirm = a.method("confirmDebit");
        const cancel = a.method("cancelDebit");
        const l = { account: "alice", amount: 100 + i };
        await c1.coordinator.registerBranch({ gid, open: true, options: { timeoutMs: 4000, retryIntervalMs: 200, maxRetryIntervalMs: 1000 }, ops: [
          { branchId: "01", op: "confirm", target: a.target, method: confirm.path, payload: confirm.requestSerialize(l) },
          { branchId: "01", op: "cancel", target: a.target, method: cancel.path, payload: cancel.requestSerialize(l) },
        ] });
        await a.client().tryDebit(l, { metadata: branchMetadata({ mode: "tcc", gid, branchId: "01", op: "try" }) });
        orphans.push(gid);
      }
    } finally {
      c1.close();
    }
    let started = 0;
    let kill: Promise<void> | undefined;
    let died!: () => void;
    const dead = new Promise<void>((resolve) => (died = resolve));
    const runs = Array.from({ length: 40 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 15));
      started++;
      if (started === 15 && !kill) kill = coordinators[0]!.kill("SIGKILL").then(died);
      await transfer(i, 10 + i);
    });
    await dead;
    // What the dead instance owned and had not finished when it died (nobody else touches a row
    // before its lease or timeout runs out, so this is the state at its death).
    const owned = (await storePool.query<{ gid: string }>(`SELECT gid FROM protomesh_tx_global WHERE owner = 'c1' AND ${UNFINISHED_SQL}`)).rows.map((r) => r.gid);
    expect(owned).to.include.members(orphans);
    await Promise.all(runs);
    await settle(since);
    // Taken over: the survivor claimed and finished every one (their Trys cancelled: timed out).
    const after = (await storePool.query<{ gid: string; status: string; owner: string; last_error: string }>("SELECT gid, status, owner, last_error FROM protomesh_tx_global WHERE gid = ANY($1)", [owned])).rows;
    expect(after).to.have.length(owned.length);
    for (const r of after) expect(["succeed", "failed"], r.gid).to.include(r.status);
    for (const gid of orphans) expect(after.find((r) => r.gid === gid)).to.deep.include({ status: "failed", owner: "c2" });
    // The survivor (and only it) drove what was left; restart an instance for the next specs.
    coordinators[0] = await coordinator("c1-restarted");
  });

  it("confirms a TCC whose participant was SIGKILLed between Try and Confirm once the participant is back", async () => {
    const since = Date.now();
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
    await settle(since, Date.now());
    expect((await tx.get(gid)).status).to.equal("succeed");
    expect((await tx.get(gid)).branches.find((x) => x.op === "confirm" && x.branchId === "02")!.attempts).to.be.at.least(2);
  });

  it("survives Postgres being down longer than the retry interval with transactions mid-flight: they resume and finish when it is back", async () => {
    const since = Date.now();
    // A participant in this process whose forward calls from the coordinators (saga actions, TCC
    // Confirms) wait on a gate: the transactions are in flight, between two of their branches,
    // when Postgres stops. It moves no money; the banks on either side of it do.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const held = new Set<string>();
    /** Forward calls per transaction, and when each last came. */
    const forward = new Map<string, { calls: number; lastAt: number }>();
    const answer = async (_req: unknown, ctx: Parameters<AccountHandlers["debit"]>[1]) => {
      const call = branchCallOf(ctx);
      if (call.op === "action" || call.op === "confirm") {
        held.add(call.gid);
        const f = forward.get(call.gid) ?? { calls: 0, lastAt: 0 };
        forward.set(call.gid, { calls: f.calls + 1, lastAt: Date.now() });
        await gate;
      }
      return { applied: true };
    };
    const gateServer = createServer({ name: "crash-gate" });
    gateServer.add(AccountDefinition, Object.fromEntries(Object.keys(AccountDefinition.methods).map((m) => [m, answer])) as unknown as AccountHandlers);
    await gateServer.listen("127.0.0.1:0");
    const g = participant(AccountDefinition, gateServer.address!);
    try {
      const gids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const s = tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 5 }).step(g, "credit", "undoCredit", { account: "gate", amount: 5 }).step(b, "credit", "undoCredit", { account: "bob", amount: 5 });
        gids.push(s.gid);
        await s.submit({ wait: false });
        const { outcome } = await tx.tcc(async (t) => {
          await t.call(a, "debit", { account: "alice", amount: 7 });
          await t.call(g, "debit", { account: "gate", amount: 7 });
          await t.call(b, "credit", { account: "bob", amount: 7 });
        }, { wait: false });
        gids.push(outcome.gid);
      }
      // Every one is held at the gate: its earlier branches done, its later ones not.
      const heldBy = Date.now() + 5000;
      while (held.size < gids.length && Date.now() < heldBy) await new Promise((r) => setTimeout(r, 20));
      expect([...held].sort()).to.deep.equal([...gids].sort());
      const unfinished = (await storePool.query<{ gid: string }>(`SELECT gid FROM protomesh_tx_global WHERE gid = ANY($1) AND ${UNFINISHED_SQL}`, [gids])).rows;
      expect(unfinished).to.have.length(gids.length);

      await pg.server.stop();
      const during = await Promise.allSettled([transfer(100, 1), tx.get(gids[0]!)]);
      await new Promise((r) => setTimeout(r, 600)); // > retry interval (200 ms) several times over
      // The held calls answer now, while the store is down: what they did cannot be recorded yet.
      open();
      await new Promise((r) => setTimeout(r, 600));
      // The coordinator says its store is unavailable (and that nothing was done: try again).
      expect(during[1].status).to.equal("rejected");
      const refusal = RpcError.from((during[1] as PromiseRejectedResult).reason);
      expect(refusal.code, refusal.message).to.equal(Status.UNAVAILABLE);
      expect(refusal.rawMessage).to.match(/^transaction store unavailable: \S/);
      const backAt = Date.now();
      await pg.server.start();
      await settle(since, backAt);
      for (const gid of gids) expect(["succeed", "failed"]).to.include((await tx.get(gid)).status);
      // Resumed, not finished before the outage: the answers given while the store was down
      // could not be recorded, so each transaction was driven through the gate again once it was back.
      for (const gid of gids) {
        expect(forward.get(gid)!.calls, gid).to.be.at.least(2);
        expect(forward.get(gid)!.lastAt, gid).to.be.at.least(backAt);
      }
    } finally {
      open();
      g.close();
      await gateServer.shutdown();
    }
  });

  it("settles a reliable message whose producer died between prepare and submit, by query-back", async () => {
    const since = Date.now();
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
    await settle(since);
    expect((await tx.get(gid1)).status).to.equal("succeed"); // committed locally → delivered
    expect((await tx.get(gid2)).status).to.equal("failed"); // rolled back with the process → dropped
  });
});
