import { expect } from "chai";
import { RpcError, Status } from "../index";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { expectInvariant, startWorld, waitAllFinal, type World } from "./helpers/transfer-world";
import { branchMetadata, pgBarrier, type TxAlert } from "../transaction";
import { main } from "../cli/main";

async function balance(w: World, bank: "a" | "b", account: string) {
  return (bank === "a" ? w.a : w.b).client().balance({ account });
}

describe("transactions: transfers between two banks on Postgres, through a coordinator found in etcd", function () {
  this.timeout(120_000);
  // Postgres first: its after-hook (which closes the world) then runs while etcd still serves.
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;
  const alerts: TxAlert[] = [];

  before(async () => {
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "tr");
    pg.beforeStop(() => w.close());
    // Two instances on one store: either may drive any transaction (and raise its alerts).
    await w.startCoordinator({ onAlert: (a) => void alerts.push(a), alertAfterAttempts: 2 });
    await w.startCoordinator({ onAlert: (a) => void alerts.push(a), alertAfterAttempts: 2 });
  });

  it("moves money with TCC: Try on both banks, then the coordinator confirms both", async () => {
    const { value, outcome } = await w.tx.tcc(async (t) => {
      const debit = await t.call(w.a, "debit", { account: "alice", amount: 1000 });
      await t.call(w.b, "credit", { account: "bob", amount: 1000 });
      return debit.applied;
    });
    expect(value).to.equal(true);
    expect(outcome.status).to.equal("succeed");
    expect(await balance(w, "a", "alice")).to.deep.include({ available: 99_000, frozen: 0 });
    expect(await balance(w, "b", "bob")).to.deep.include({ available: 101_000, incoming: 0 });
  });

  it("cancels every Try in reverse when one fails, and leaves the balances as they were", async () => {
    const before = await balance(w, "a", "alice");
    let gid = "";
    const err = await w.tx
      .tcc(async (t) => {
        gid = t.gid;
        await t.call(w.b, "credit", { account: "bob", amount: 5 });
        await t.call(w.a, "debit", { account: "alice", amount: 10_000_000 }); // more than alice has
      })
      .then(() => undefined, (e: unknown) => RpcError.from(e));
    expect(err?.code).to.equal(Status.ABORTED);
    const t = await w.tx.get(gid);
    expect(t.status).to.equal("failed");
    expect(t.branches.filter((b) => b.op === "cancel").every((b) => b.status === "succeed")).to.equal(true);
    expect(await balance(w, "a", "alice")).to.deep.equal(before);
    await expectInvariant(w);
  });

  it("opens a TCC with its first branch registration (no Prepare); one only ever opened that way times out and cancels its Try", async () => {
    const co = w.tx.coordinator;
    const debit = w.a.method("confirmDebit");
    const cancel = w.a.method("cancelDebit");
    const ops = (id: string, amount: number) => [
      { branchId: id, op: "confirm", target: w.a.target, method: debit.path, payload: debit.requestSerialize({ account: "alice", amount }) },
      { branchId: id, op: "cancel", target: w.a.target, method: cancel.path, payload: cancel.requestSerialize({ account: "alice", amount }) },
    ];
    const code = (p: Promise<unknown>) => p.then(() => Status.OK, (e: unknown) => RpcError.from(e).code);
    const before = await balance(w, "a", "alice");

    // The caller opens the transaction with its first branch, runs that branch's Try, and dies.
    const gid = `open-then-die-${Date.now().toString(36)}`;
    await co.registerBranch({ gid, open: true, options: { timeoutMs: 600, retryIntervalMs: 100 }, ops: ops("01", 40) });
    expect(await code(co.registerBranch({ gid, open: true, ops: ops("02", 1) }))).to.equal(Status.ALREADY_EXISTS);
    expect(await code(co.registerBranch({ gid: `never-opened-${gid}`, ops: ops("01", 1) }))).to.equal(Status.NOT_FOUND);
    expect(await code(co.registerBranch({ gid: `bad-options-${gid}`, open: true, options: { timeoutMs: 8 * 24 * 3_600_000 }, ops: ops("01", 1) }))).to.equal(Status.INVALID_ARGUMENT);
    await w.a.client().tryDebit({ account: "alice", amount: 40 }, { metadata: branchMetadata({ mode: "tcc", gid, branchId: "01", op: "try" }) });
    expect((await balance(w, "a", "alice")).frozen).to.equal(before.frozen + 40);
    const opened = await w.tx.get(gid);
    expect(opened).to.deep.include({ mode: "tcc", status: "prepared" });
    expect(opened.branches.map((b) => `${b.branchId}/${b.op}`)).to.deep.equal(["01/confirm", "01/cancel"]);

    const until = Date.now() + 20_000;
    while ((await w.tx.get(gid)).status !== "failed" && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const t = await w.tx.get(gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.match(/timed out/);
    expect(await balance(w, "a", "alice")).to.deep.equal(before);

    // Through the SDK, concurrent first calls register into one transaction.
    const { outcome } = await w.tx.tcc(async (tcc) => {
      await Promise.all([tcc.call(w.a, "debit", { account: "alice", amount: 3 }), tcc.call(w.b, "credit", { account: "bob", amount: 3 })]);
    });
    expect(outcome.status).to.equal("succeed");
    expect((await w.tx.get(outcome.gid)).branches).to.have.length(4);
    // A body that calls no branch still ends in a stored, succeeded transaction.
    const empty = await w.tx.tcc(async () => 7);
    expect(empty.value).to.equal(7);
    expect((await w.tx.get(empty.outcome.gid)).status).to.equal("succeed");
    // A gid that is taken is refused before any Try runs, and the other transaction is left alone.
    const taken = await w.tx.tcc(async (tcc) => tcc.call(w.a, "debit", { account: "alice", amount: 1 }), { gid: outcome.gid }).then(() => undefined, (e: unknown) => RpcError.from(e));
    expect(taken?.code).to.equal(Status.ALREADY_EXISTS);
    expect((await w.tx.get(outcome.gid)).status).to.equal("succeed");
    await expectInvariant(w);
  });

  it("runs a saga forward, and compensates the steps that ran when a later one fails", async () => {
    const ok = await w.tx.saga().step(w.a, "debit", "undoDebit", { account: "alice", amount: 500 }).step(w.b, "credit", "undoCredit", { account: "bob", amount: 500 }).submit();
    expect(ok.status).to.equal("succeed");
    const bad = await w.tx.saga().step(w.b, "credit", "undoCredit", { account: "bob", amount: 7 }).step(w.a, "debit", "undoDebit", { account: "alice", amount: 10_000_000 }).submit();
    expect(bad.status).to.equal("failed");
    expect(bad.lastError).to.match(/insufficient funds/);
    const t = await w.tx.get(bad.gid);
    expect(t.branches.find((b) => b.op === "compensate" && b.branchId === "01")!.status).to.equal("succeed");
    await expectInvariant(w);
  });

  it("runs independent saga steps concurrently and honours `after`", async () => {
    const s = await w.tx
      .saga({ concurrent: true })
      .step(w.a, "debit", "undoDebit", { account: "alice", amount: 100 })
      .step(w.b, "credit", "undoCredit", { account: "bob", amount: 60 })
      .step(w.b, "credit", "undoCredit", { account: "bob", amount: 40 }, { after: [0] })
      .submit();
    expect(s.status).to.equal("succeed");
    const t = await w.tx.get(s.gid);
    const at = (id: string) => t.branches.find((b) => b.branchId === id && b.op === "action")!.updatedAtMs;
    expect(at("03")).to.be.at.least(at("01"));
    await expectInvariant(w);
  });

  it("delivers a reliable message after the producer's local transaction commits, and drops it when that rolls back", async () => {
    const barrier = pgBarrier(w.pools[0]!);
    const msg = w.tx.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 250 });
    const { outcome } = await msg.commit(barrier, (db) => db.query("UPDATE account SET available = available - 250 WHERE id = 'alice'"), { wait: true });
    expect(outcome.status).to.equal("succeed");
    await expectInvariant(w);

    const failing = w.tx.message(w.banks[0]!.server.address!).add(w.b, "credit", { account: "bob", amount: 1 });
    const err = await failing.commit(barrier, async () => {
      throw new Error("local business failed");
    }).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.equal("local business failed");
    expect((await w.tx.get(failing.gid)).status).to.equal("failed");
    await expectInvariant(w);
  });

  it("notifies best-effort on its schedule, records every attempt, and gives up at the end of the schedule", async () => {
    let calls = 0;
    w.notifyBehaviour = async () => {
      if (++calls < 3) throw new RpcError(Status.UNAVAILABLE, "receiver busy");
      return {};
    };
    const ok = await w.tx.notify(w.notes, "transferDone", { from: "alice", to: "bob", amount: 1 }, { scheduleMs: [50, 50, 50] });
    await waitAllFinal(w.storeUrl, 20_000);
    const t = await w.tx.get(ok.gid);
    expect(t.status).to.equal("succeed");
    expect(t.attempts.map((a) => a.code).slice(0, 3)).to.deep.equal([Status.UNAVAILABLE, Status.UNAVAILABLE, Status.OK]);

    w.notifyBehaviour = async () => {
      throw new RpcError(Status.UNAVAILABLE, "receiver down");
    };
    const gaveUp = await w.tx.notify(w.notes, "transferDone", { from: "alice", to: "bob", amount: 2 }, { scheduleMs: [50, 50] });
    await waitAllFinal(w.storeUrl, 20_000);
    const g = await w.tx.get(gaveUp.gid);
    expect(g.status).to.equal("failed");
    // Three attempts on a two-wait schedule (at least once each: a round repeated by a second instance adds one).
    expect(g.attempts.length).to.be.at.least(3);
    expect(g.attempts.every((a) => a.code === Status.UNAVAILABLE)).to.equal(true);
    expect(g.lastError).to.match(/gave up after \d+ attempts/);
  });

  it("retries a branch that keeps failing, alerts, and gives up at the retry limit; tx show and tx retry see it", async () => {
    alerts.length = 0;
    // A target nobody serves: every call is UNAVAILABLE, which is retried.
    const s = await w.tx.saga({ retryLimit: 3 }).step({ ...w.b, target: "127.0.0.1:1" }, "credit", "undoCredit", { account: "bob", amount: 1 }).submit({ wait: false });
    await waitAllFinal(w.storeUrl, 30_000);
    const t = await w.tx.get(s.gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.match(/gave up after \d+ rounds/);
    expect(t.branches.find((b) => b.op === "action")!.attempts).to.equal(3);
    expect(alerts.map((a) => a.kind)).to.include("gave-up");

    const out: string[] = [];
    const io = { cwd: process.cwd(), env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoints.join(",") }, out: (s: string) => void out.push(s), err: (s: string) => void out.push(s) };
    const coordinator = w.coordinators[0]!.server.address!;
    expect(await main(["tx", "show", s.gid, "--coordinator", coordinator], io)).to.equal(0);
    expect(out.join("")).to.match(/status\s+failed/).and.match(/UNAVAILABLE/);
    out.length = 0;
    expect(await main(["tx", "list", "--status", "failed", "--coordinator", coordinator], io)).to.equal(0);
    expect(out.join("")).to.include(s.gid);
    out.length = 0;
    expect(await main(["tx", "show", "no-such-gid", "--coordinator", coordinator], io)).to.equal(1);
    expect(out.join("")).to.match(/NOT_FOUND: transaction no-such-gid not found/);
    out.length = 0;
    expect(await main(["tx", "retry", s.gid, "--coordinator", coordinator, "--json"], io)).to.equal(0);
    expect(JSON.parse(out.join("")).rounds).to.be.at.least(1);
    out.length = 0;
    expect(await main(["tx", "stop", s.gid, "--coordinator", coordinator], io)).to.equal(0);
    expect(out.join("")).to.match(/stopped by an operator/);
    out.length = 0;
    // A stopped transaction is final; retry says so (not that it "finished rolling back").
    expect(await main(["tx", "retry", s.gid, "--coordinator", coordinator], io)).to.equal(1);
    expect(out.join("")).to.match(/FAILED_PRECONDITION: transaction \S+ was stopped by an operator; a stopped transaction is final/);
  });

  it("answers bad input with clear errors and stores nothing for it", async () => {
    const co = w.tx.coordinator;
    const code = (p: Promise<unknown>) => p.then(() => Status.OK, (e: unknown) => RpcError.from(e).code);
    expect(await code(co.get({ gid: "unknown-gid" }))).to.equal(Status.NOT_FOUND);
    expect(await code(co.get({ gid: "bad gid with spaces" }))).to.equal(Status.INVALID_ARGUMENT);
    expect(await code(co.submit({ gid: "x1", mode: "saga", branches: [] }))).to.equal(Status.INVALID_ARGUMENT);
    expect(await code(co.submit({ gid: "x2", mode: "warp" }))).to.equal(Status.INVALID_ARGUMENT);
    const big = Buffer.alloc(70 * 1024);
    const err = await co.submit({ gid: "x3", mode: "notify", branches: [{ branchId: "01", op: "notify", target: "127.0.0.1:1", method: "/a.B/C", payload: big }] }).catch((e: unknown) => RpcError.from(e));
    expect((err as RpcError).code).to.equal(Status.INVALID_ARGUMENT);
    expect((err as RpcError).rawMessage).to.match(/over the 65536-byte limit/);
    expect(await code(co.submit({ gid: "x4", mode: "saga", branches: [{ branchId: "01", op: "action", target: "t:1", method: "not a path" }] }))).to.equal(Status.INVALID_ARGUMENT);
    for (const gid of ["x1", "x2", "x3", "x4"]) expect(await code(co.get({ gid }))).to.equal(Status.NOT_FOUND);
  });

  it("fails a saga whose participant method does not exist instead of retrying it forever", async () => {
    const s = await w.tx.saga().step(w.b, "credit", "undoCredit", { account: "bob", amount: 3 }).step({ ...w.a, method: (n: string) => (n === "debit" ? { ...w.a.method(n), path: "/examples.transfer.v1.Account/NoSuchMethod" } : w.a.method(n)) }, "debit", "undoDebit", { account: "alice", amount: 3 }).submit();
    expect(s.status).to.equal("failed");
    expect(s.lastError).to.match(/UNIMPLEMENTED/);
    await expectInvariant(w);
  });

  it("treats a branch that answers garbage (not gRPC) as retryable, rolls back at the retry limit, then gives up; no money moves", async () => {
    const http = await import("node:http");
    const garbage = http.createServer((_req, res) => res.end("<html>not grpc</html>"));
    await new Promise<void>((r) => garbage.listen(0, "127.0.0.1", r));
    try {
      const port = (garbage.address() as { port: number }).port;
      const s = await w.tx.saga({ retryLimit: 2 }).step({ ...w.b, target: `127.0.0.1:${port}` }, "credit", "undoCredit", { account: "bob", amount: 9 }).submit();
      expect(s.status).to.be.oneOf(["submitted", "aborting"]); // retrying, or already rolling back
      await waitAllFinal(w.storeUrl, 30_000);
      const t = await w.tx.get(s.gid);
      expect(t.status).to.equal("failed");
      expect(t.lastError).to.match(/gave up/);
      expect(t.attempts.length).to.be.at.least(3);
      expect(t.attempts.every((a) => a.code !== Status.OK)).to.equal(true);
      await expectInvariant(w);
    } finally {
      garbage.close();
    }
  });
});
