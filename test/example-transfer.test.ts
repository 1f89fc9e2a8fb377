import { expect } from "chai";
import { branchMetadata } from "../transaction";
import { OPENING, runTransfers, startExample, type Example, type RunResult } from "../examples/transfer/main";

describe("examples/transfer end to end on the embedded store: TCC, saga, and a reliable message per transfer to the notifier", function () {
  this.timeout(120_000);
  let ex: Example;
  let run: RunResult;
  const lines: string[] = [];

  before(async () => {
    ex = await startExample();
    run = await runTransfers(ex, (l) => void lines.push(l));
  });
  after(async () => {
    await ex?.close();
  });

  const notificationsByMessage = async () => {
    const r = await ex.notifier.db.query(`SELECT message_gid, count(*) AS n FROM notification GROUP BY message_gid ORDER BY message_gid`);
    return Object.fromEntries((r.rows as Array<{ message_gid: string; n: string | number }>).map((x) => [x.message_gid, Number(x.n)]));
  };

  it("moves money with TCC and with a saga, rolls back the two that ask too much, and conserves the balances", async () => {
    expect(run.transfers.map((t) => `${t.what}: ${t.status}`)).to.deep.equal([
      "TCC 15.00 alice → bob: succeed",
      "TCC 999.99 alice → bob (too much): failed",
      "saga 7.00 alice → bob: succeed",
      "saga 500.00 alice → bob (too much): failed",
    ]);
    expect(run.balances).to.deep.equal({ alice: OPENING.alice - 2200, bob: OPENING.bob + 2200 });
    let total = 0;
    for (const bank of [ex.bankA, ex.bankB]) {
      const r = await bank.db.query(`SELECT coalesce(sum(available), 0) AS a, coalesce(sum(frozen), 0) AS f, coalesce(sum(incoming), 0) AS i FROM account`);
      const row = r.rows[0] as { a: string | number; f: string | number; i: string | number };
      expect([Number(row.f), Number(row.i)]).to.deep.equal([0, 0]);
      total += Number(row.a);
    }
    expect(total).to.equal(OPENING.alice + OPENING.bob);
  });

  it("records one notification per message in the notifier's database, with alice's statement line at bank-a", async () => {
    const ok = run.transfers.filter((t) => t.status === "succeed");
    expect(run.messages.map((m) => [m.transfer, m.status])).to.deep.equal(ok.map((t) => [t.gid, "succeed"]));
    expect(await notificationsByMessage()).to.deep.equal(Object.fromEntries(run.messages.map((m) => [m.gid, 1])));
    expect(run.notifications.map((n) => n.text)).to.deep.equal([`transfer ${ok[0]!.gid} of 15.00 from alice to bob`, `transfer ${ok[1]!.gid} of 7.00 from alice to bob`]);
    expect(run.earlierNotifications).to.equal(0);
    const statement = await ex.bankA.db.query(`SELECT transfer, amount FROM statement ORDER BY transfer`);
    expect((statement.rows as Array<{ transfer: string; amount: string | number }>).map((r) => [r.transfer, Number(r.amount)])).to.deep.equal(
      ok.map((t) => [t.gid, -t.amount]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    // What the run printed.
    for (const n of run.notifications) expect(lines).to.include(`  ${n.messageGid}  ${n.text}`);
    expect(lines.at(-1)).to.equal("\nalice 78.00 + bob 122.00 = 200.00 (opening total 200.00)");
  });

  it("records nothing when a message is delivered again, and refuses a call that no transaction delivers", async () => {
    const before = await notificationsByMessage();
    for (const m of run.messages) {
      const t = run.transfers.find((x) => x.gid === m.transfer)!;
      const again = await ex.notes.client().transferDone(
        { transfer: t.gid, from: "alice", to: "bob", amount: t.amount },
        { metadata: branchMetadata({ mode: "msg", gid: m.gid, branchId: "01", op: "action" }) },
      );
      expect(again.applied).to.equal(false);
    }
    expect(await notificationsByMessage()).to.deep.equal(before);
    const plain = await ex.notes.client().transferDone({ transfer: "x", from: "alice", to: "bob", amount: 1 }).then(() => undefined, (e: unknown) => e as Error);
    expect(plain?.message).to.match(/not a transaction branch call/);
    expect(await notificationsByMessage()).to.deep.equal(before);
  });

  it("refuses a second message about the same transfer: the statement line is there already, so nothing is sent", async () => {
    const t = run.transfers[0]!;
    const msg = ex.tx.message(ex.bankA.server.address!).add(ex.notes, "transferDone", { transfer: t.gid, from: "alice", to: "bob", amount: t.amount });
    const err = await msg
      .commit(ex.bankA.barrier, (db) => db.query(`INSERT INTO statement (transfer, account, amount, memo) VALUES ($1, 'alice', $2, 'to bob')`, [t.gid, -t.amount]))
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).to.match(/duplicate key/);
    expect((await ex.tx.get(msg.gid)).status).to.equal("failed");
    expect(Object.values(await notificationsByMessage()).reduce((s, n) => s + n, 0)).to.equal(run.messages.length);
  });
});
