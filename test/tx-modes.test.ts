/**
 * Mode behaviour that the transfer specs do not pin: a saga that times out rolls back, a
 * message subscriber is redelivered on the capped backoff, and a TCC cancels in reverse branch
 * order. A recording Account service (a real protomesh server) stands in for the participant
 * whose answers and timing each spec needs; the coordinator, its Postgres store and the banks
 * are the transfer world's.
 */
import { expect } from "chai";
import { createServer, RpcError, Status, type Server } from "../index";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { expectInvariant, startWorld, waitAllFinal, type World } from "./helpers/transfer-world";
import { backoffMs, branchCallOf, participant, pgBarrier, type BranchCall, type Participant, type TxSettings } from "../transaction";
import { AccountDefinition, type AccountClient, type AccountHandlers } from "../gen/examples/transfer/v1/transfer_protomesh";
import type { Leg } from "../gen/examples/transfer/v1/transfer";

interface Seen {
  readonly method: string;
  readonly call: BranchCall;
  readonly request: Leg;
  readonly at: number;
}

describe("transactions: saga timeout, message redelivery and TCC cancel order, as a participant sees them", function () {
  this.timeout(120_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;
  let recorder: Server;
  let rec: Participant<AccountClient>;
  const seen: Seen[] = [];
  /** What the recorder does with a call (after recording it); throwing answers the error. */
  let behaviour: (s: Seen, earlier: readonly Seen[]) => void = () => undefined;

  before(async () => {
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "md");
    pg.beforeStop(() => w.close());
    await w.startCoordinator({ alertAfterAttempts: 1000 });
    recorder = createServer({ name: "md-recorder" });
    const handlers = Object.fromEntries(
      Object.keys(AccountDefinition.methods).map((method) => [
        method,
        async (request: Leg, ctx: Parameters<AccountHandlers["debit"]>[1]) => {
          const s: Seen = { method, call: branchCallOf(ctx), request, at: Date.now() };
          const earlier = seen.filter((x) => x.call.gid === s.call.gid);
          seen.push(s);
          behaviour(s, earlier);
          return { applied: true };
        },
      ]),
    ) as unknown as AccountHandlers;
    recorder.add(AccountDefinition, handlers);
    await recorder.listen("127.0.0.1:0");
    rec = participant(AccountDefinition, recorder.address!);
  });

  after(async () => {
    rec?.close();
    await recorder?.shutdown();
  });

  beforeEach(() => {
    seen.length = 0;
    behaviour = () => undefined;
  });

  it("rolls a saga back when it times out with an action still failing: compensations run in reverse, status failed, the reason says timeout", async () => {
    const before = await w.a.client().balance({ account: "alice" });
    behaviour = (s) => {
      if (s.method === "credit") throw new RpcError(Status.UNAVAILABLE, "credit side down");
    };
    const timeoutMs = 1500;
    const saga = await w.tx
      .saga({ timeoutMs, retryIntervalMs: 100, maxRetryIntervalMs: 100 })
      .step(w.a, "debit", "undoDebit", { account: "alice", amount: 77 })
      .step(rec, "credit", "undoCredit", { account: "bob", amount: 77 })
      .submit({ wait: false });
    await waitAllFinal(w.storeUrl, 20_000);

    const t = await w.tx.get(saga.gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.equal("timed out before every action succeeded");
    const branch = (id: string, op: string) => t.branches.find((b) => b.branchId === id && b.op === op)!;
    expect(branch("01", "action").status).to.equal("succeed");
    expect(branch("02", "action").status).to.equal("prepared");
    expect(branch("02", "action").attempts).to.be.at.least(2);
    expect(branch("02", "compensate").status).to.equal("succeed");
    expect(branch("01", "compensate").status).to.equal("succeed");
    // Reverse order: the second step's compensation before the first's.
    expect(branch("02", "compensate").updatedAtMs).to.be.at.most(branch("01", "compensate").updatedAtMs);

    // The participant saw actions until the timeout, then only the compensation.
    const credits = seen.filter((s) => s.method === "credit");
    const undo = seen.filter((s) => s.method === "undoCredit");
    expect(undo).to.have.length(1);
    expect(undo[0]!.call).to.deep.include({ gid: saga.gid, branchId: "02", op: "compensate" });
    expect(undo[0]!.request).to.deep.equal({ account: "bob", amount: 77 });
    expect(undo[0]!.at - t.createdAtMs).to.be.at.least(timeoutMs);
    expect(credits.every((c) => c.at < undo[0]!.at)).to.equal(true);
    expect(credits.filter((c) => c.at - t.createdAtMs < timeoutMs).length).to.be.at.least(2);
    // Alice's debit was undone through her bank's barrier.
    expect(await w.a.client().balance({ account: "alice" })).to.deep.equal(before);
    await expectInvariant(w);
  });

  it("redelivers a message to a subscriber that fails twice, waiting backoffMs between attempts, capped at maxRetryIntervalMs", async () => {
    behaviour = (s, earlier) => {
      if (s.method === "credit" && earlier.length < 2) throw new RpcError(Status.UNAVAILABLE, `not yet (${earlier.length + 1})`);
    };
    // Doubling would wait 600 ms, then 1200 ms; the cap makes the second wait 900 ms.
    const options = { retryIntervalMs: 600, maxRetryIntervalMs: 900 };
    const msg = w.tx.message(w.banks[0]!.server.address!, options).add(rec, "credit", { account: "bob", amount: 5 });
    const { outcome } = await msg.commit(pgBarrier(w.pools[0]!), (db) => db.query("SELECT 1"), { wait: true });
    expect(outcome.status).to.equal("submitted"); // the first delivery failed: retried later
    await waitAllFinal(w.storeUrl, 20_000);

    const t = await w.tx.get(msg.gid);
    expect(t.status).to.equal("succeed");
    const action = t.branches.find((b) => b.op === "action")!;
    expect(action).to.deep.include({ status: "succeed", attempts: 3 });
    // The coordinator records each failed delivery; the success is the branch's last update.
    expect(t.attempts.map((a) => [a.op, a.code, a.error])).to.deep.equal([
      ["action", Status.UNAVAILABLE, "not yet (1)"],
      ["action", Status.UNAVAILABLE, "not yet (2)"],
    ]);
    const times = [t.attempts[0]!.atMs, t.attempts[1]!.atMs, action.updatedAtMs];
    const gaps = [times[1]! - times[0]!, times[2]! - times[1]!];
    const settings = t.options as TxSettings;
    expect([backoffMs(settings, 1), backoffMs(settings, 2)]).to.deep.equal([600, 900]);
    // Each redelivery came no sooner than its backoff…
    expect(gaps[0]).to.be.at.least(backoffMs(settings, 1));
    expect(gaps[1]).to.be.at.least(backoffMs(settings, 2));
    // …and the second well before the uncapped 1200 ms (the poll adds at most 100 ms here).
    expect(gaps[1]).to.be.below(options.retryIntervalMs * 2);

    // The subscriber's side: three deliveries of one request, the same branch each time.
    const got = seen.filter((s) => s.call.gid === msg.gid);
    expect(got.map((s) => [s.method, s.call.mode, s.call.branchId, s.call.op])).to.deep.equal(Array(3).fill(["credit", "msg", "01", "action"]));
    expect(got.every((s) => s.request.account === "bob" && s.request.amount === 5)).to.equal(true);
  });

  it("cancels a TCC's branches in reverse registration order", async () => {
    let gid = "";
    const err = await w.tx
      .tcc(async (t) => {
        gid = t.gid;
        await t.call(rec, "debit", { account: "alice", amount: 1 });
        await t.call(rec, "credit", { account: "bob", amount: 2 });
        await t.call(rec, "debit", { account: "carol", amount: 3 });
        throw new Error("changed my mind");
      })
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.equal("changed my mind");

    const t = await w.tx.get(gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.equal("aborted by the caller: changed my mind");
    expect(t.branches.filter((b) => b.op === "cancel").every((b) => b.status === "succeed")).to.equal(true);
    expect(t.branches.filter((b) => b.op === "confirm").every((b) => b.attempts === 0)).to.equal(true);
    const mine = seen.filter((s) => s.call.gid === gid);
    expect(mine.map((s) => [s.method, s.call.branchId, s.request.account])).to.deep.equal([
      ["tryDebit", "01", "alice"],
      ["tryCredit", "02", "bob"],
      ["tryDebit", "03", "carol"],
      ["cancelDebit", "03", "carol"],
      ["cancelCredit", "02", "bob"],
      ["cancelDebit", "01", "alice"],
    ]);
  });
  it("gives up an aborted TCC whose Cancel keeps failing after exactly retryLimit rounds (the abort's own round counts)", async () => {
    behaviour = (s) => {
      if (s.method.startsWith("cancel")) throw new RpcError(Status.UNAVAILABLE, "cancel side down");
    };
    const retryLimit = 3;
    let gid = "";
    const err = await w.tx
      .tcc(
        async (t) => {
          gid = t.gid;
          await t.call(rec, "debit", { account: "alice", amount: 4 });
          throw new Error("abort it");
        },
        { retryLimit, retryIntervalMs: 100, maxRetryIntervalMs: 100 },
      )
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.equal("abort it");
    await waitAllFinal(w.storeUrl, 20_000);

    const t = await w.tx.get(gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.match(new RegExp(`^gave up after ${retryLimit} rounds \\(retry limit\\)`));
    const cancels = seen.filter((s) => s.call.gid === gid && s.method === "cancelDebit");
    expect(cancels.length).to.equal(retryLimit);
    expect(t.branches.find((b) => b.op === "cancel")!.attempts).to.equal(retryLimit);
  });
});
