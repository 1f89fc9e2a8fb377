import { expect } from "chai";
import { Pool } from "pg";
import { RpcError, Status } from "../index";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { startWorld, waitAllFinal, type World } from "./helpers/transfer-world";
import { branchCallOf, type NotificationRequest } from "../transaction";
import { TransferNotice } from "../gen/examples/transfer/v1/transfer";

describe("transactions: a notification's receiver reads the original, and a notification has a maximum age", function () {
  this.timeout(120_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;

  before(async () => {
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "nt");
    pg.beforeStop(() => w.close());
    await w.startCoordinator({ alertAfterAttempts: 1000 });
  });

  it("lets a receiver that failed twice read the original request by the gid it was called with", async () => {
    const received: Array<{ gid: string; op: string; notice: TransferNotice }> = [];
    let original: NotificationRequest<TransferNotice> | undefined;
    w.notifyBehaviour = async (notice, ctx) => {
      const call = branchCallOf(ctx);
      received.push({ gid: call.gid, op: call.op, notice });
      if (received.length <= 2) throw new RpcError(Status.UNAVAILABLE, "receiver restarting");
      // Not sure what it was told while it was down: ask the coordinator for the original.
      original = await w.tx.notification(call.gid, TransferNotice.decode);
      return {};
    };
    const sent = { from: "alice", to: "bob", amount: 4_321 };
    const n = await w.tx.notify(w.notes, "transferDone", sent, { scheduleMs: [50, 50, 50] });
    await waitAllFinal(w.storeUrl, 20_000);

    expect((await w.tx.get(n.gid)).status).to.equal("succeed");
    expect(received.map((r) => [r.gid, r.op])).to.deep.equal([[n.gid, "notify"], [n.gid, "notify"], [n.gid, "notify"]]);
    expect(original).to.deep.equal({ gid: n.gid, status: "submitted", method: "/examples.transfer.v1.Notifications/TransferDone", request: sent, attempts: 2 });
    expect(original!.request).to.deep.equal(received[0]!.notice);

    // The payload is read only when asked for; its size is always there.
    const plain = await w.tx.get(n.gid);
    expect(plain.branches[0]!.payload).to.have.length(0);
    expect(plain.branches[0]!.payloadBytes).to.equal(TransferNotice.encode(sent).finish().length);
    const full = await w.tx.get(n.gid, { payloads: true });
    expect(TransferNotice.decode(full.branches[0]!.payload)).to.deep.equal(sent);
    // A generated method definition decodes it as well.
    expect((await w.tx.notification(n.gid, w.notes.method("transferDone").requestDeserialize)).request).to.deep.equal(sent);

    const saga = await w.tx.saga().step(w.b, "credit", "undoCredit", { account: "bob", amount: 1 }).submit();
    const err = await w.tx.notification(saga.gid, TransferNotice.decode).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.equal(`transaction ${saga.gid} is a saga, not a notification`);
  });

  it("gives up at maxAgeMs though the schedule has waits left, never attempting past it", async () => {
    let calls = 0;
    w.notifyBehaviour = async () => {
      calls++;
      throw new RpcError(Status.UNAVAILABLE, "receiver down");
    };
    const maxAgeMs = 800;
    const schedule = Array.from({ length: 50 }, () => 50);
    const n = await w.tx.notify(w.notes, "transferDone", { from: "alice", to: "bob", amount: 1 }, { scheduleMs: schedule, maxAgeMs });
    await waitAllFinal(w.storeUrl, 20_000);
    const t = await w.tx.get(n.gid);
    expect(t.status).to.equal("failed");
    expect(t.options!.maxAgeMs).to.equal(maxAgeMs);
    // Ended after an attempt whose next one would come too late, or by a round that came after the age (the poll is 100 ms).
    expect(t.lastError).to.match(/^gave up after \d+ attempts: the notification reached its maximum age \(maxAgeMs 800\); (branch 01 notify \S+: UNAVAILABLE receiver down|last answer: receiver down)$/);
    // Several attempts, far fewer than the 51 the schedule allows, all before the notification was maxAgeMs old.
    expect(t.attempts.length).to.be.within(2, 50);
    expect(t.attempts.length).to.equal(calls);
    for (const a of t.attempts) expect(a.atMs - t.createdAtMs).to.be.below(maxAgeMs);
    // Ended at the age, not at the end of the schedule (50 more waits of 50 ms, each plus up to a 100 ms poll).
    expect(t.finishedAtMs - t.createdAtMs).to.be.below(maxAgeMs + 1000);
  });

  it("fails a notification found past its maximum age (its coordinators were down) without calling the receiver, and will not retry it", async () => {
    let calls = 0;
    w.notifyBehaviour = async () => {
      calls++;
      throw new RpcError(Status.UNAVAILABLE, "receiver down");
    };
    // One attempt now, the next in a minute: well inside its two-minute age.
    const n = await w.tx.notify(w.notes, "transferDone", { from: "alice", to: "bob", amount: 2 }, { scheduleMs: [60_000], maxAgeMs: 120_000, wait: true });
    expect(n.status).to.equal("submitted");
    expect(calls).to.equal(1);
    // Two minutes pass while no coordinator runs: the row is older than its age when one looks again.
    const pool = new Pool({ connectionString: w.storeUrl, max: 1 });
    try {
      await pool.query("UPDATE protomesh_tx_global SET created_at = created_at - 120000, next_at = $2 WHERE gid = $1", [n.gid, Date.now()]);
    } finally {
      await pool.end();
    }
    await waitAllFinal(w.storeUrl, 20_000);
    const t = await w.tx.get(n.gid);
    expect(t.status).to.equal("failed");
    expect(t.lastError).to.match(/^gave up after 1 attempts: the notification reached its maximum age \(maxAgeMs 120000\); last answer: receiver down$/);
    expect(calls).to.equal(1);
    expect(t.attempts).to.have.length(1);

    const retried = await w.tx.coordinator.retry({ gid: n.gid }).then(() => undefined, (e: unknown) => RpcError.from(e));
    expect(retried?.code).to.equal(Status.FAILED_PRECONDITION);
    expect(retried?.rawMessage).to.match(/past its maximum age/);
    expect(calls).to.equal(1);
  });

  it("refuses a maxAgeMs below 10 ms", async () => {
    const err = await w.tx.notify(w.notes, "transferDone", { from: "a", to: "b", amount: 1 }, { maxAgeMs: 5 }).then(() => undefined, (e: unknown) => RpcError.from(e));
    expect(err?.code).to.equal(Status.INVALID_ARGUMENT);
    expect(err?.rawMessage).to.match(/maxAgeMs must be 0 \(no limit\) or at least 10 ms, got 5/);
  });
});
