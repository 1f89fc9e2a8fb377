/**
 * Pruning of barrier rows, shared by every adapter's spec: old rows of closed branches go,
 * open branches and recent rows stay, and what still arrives afterwards behaves.
 */
import { expect } from "chai";
import { BARRIER_TABLE, type Barrier } from "../../transaction/barrier/barrier";
import type { BarrierOp, BranchCall } from "../../transaction/barrier/call-info";

export interface PruneDb<Tx> {
  barrier: Barrier<Tx>;
  /** Runs one statement on the barrier's database (outside any guarded call); returns rows changed. */
  run(sql: string): Promise<number>;
  /** Rows of the barrier table for `gid`, as `branch/op` strings. */
  rows(gid: string): Promise<string[]>;
}

const HOUR = 3_600_000;

export async function checkPrune<Tx>(db: PruneDb<Tx>, tag: string): Promise<void> {
  const ran: string[] = [];
  const call = (mode: BranchCall["mode"], gid: string, op: BarrierOp) =>
    db.barrier.run({ mode, gid, branchId: "01", op }, async () => void ran.push(`${gid}:${op}`));
  const g = (name: string) => `${tag}-${name}`;

  // Old and closed: TCC confirmed; TCC cancelled before its Try (empty compensation); saga compensated; a message.
  await call("tcc", g("old-confirmed"), "try");
  await call("tcc", g("old-confirmed"), "confirm");
  await call("tcc", g("old-empty-cancel"), "cancel");
  await call("saga", g("old-compensated"), "action");
  await call("saga", g("old-compensated"), "compensate");
  await db.barrier.prepareMessage(g("old-msg"), async () => undefined);
  // Old but open: a Try still waiting for its second phase; a saga action that may be compensated.
  await call("tcc", g("old-open-try"), "try");
  await call("saga", g("old-open-action"), "action");
  // Closed, but its second phase is recent: the branch stays whole.
  await call("tcc", g("mixed"), "try");
  // Recent and closed: inside the retention window.
  await call("tcc", g("recent"), "try");
  await call("tcc", g("recent"), "confirm");

  const age = (gid: string, ms: number) => db.run(`UPDATE ${BARRIER_TABLE} SET created_at = created_at - ${ms} WHERE gid = '${gid}'`);
  for (const name of ["old-confirmed", "old-empty-cancel", "old-compensated", "old-msg", "old-open-try", "old-open-action", "mixed"]) await age(g(name), 2 * HOUR);
  await call("tcc", g("mixed"), "confirm"); // a fresh row in an old branch

  await expectRejects(db.barrier.prune({ olderThanMs: 10 }), /olderThanMs must be at least/);
  const deleted = await db.barrier.prune({ olderThanMs: HOUR });
  expect(deleted, "rows deleted: try+confirm, try+cancel, action+compensate, msg").to.equal(7);
  for (const name of ["old-confirmed", "old-empty-cancel", "old-compensated", "old-msg"]) expect(await db.rows(g(name)), name).to.deep.equal([]);
  expect(await db.rows(g("old-open-try"))).to.deep.equal(["01/try"]);
  expect(await db.rows(g("old-open-action"))).to.deep.equal(["01/action"]);
  expect(await db.rows(g("mixed"))).to.deep.equal(["01/confirm", "01/try"]);
  expect(await db.rows(g("recent"))).to.deep.equal(["01/confirm", "01/try"]);
  expect(await db.barrier.prune({ olderThanMs: HOUR }), "a second prune finds nothing").to.equal(0);

  ran.length = 0;
  // Replays inside the retention window are still exactly once.
  expect(await call("tcc", g("recent"), "confirm")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
  expect(await call("tcc", g("recent"), "try")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
  expect(await call("tcc", g("mixed"), "confirm")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
  // A late Cancel after its Try's rows were pruned still runs nothing (it sees an empty compensation).
  expect(await call("tcc", g("old-confirmed"), "cancel")).to.deep.equal({ ran: false, skipped: "empty-compensation" });
  expect(await call("saga", g("old-compensated"), "compensate")).to.deep.equal({ ran: false, skipped: "empty-compensation" });
  // An open branch kept its rows, so its undo still runs — once.
  expect(await call("tcc", g("old-open-try"), "cancel")).to.deep.include({ ran: true });
  expect(await call("tcc", g("old-open-try"), "cancel")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
  expect(await call("saga", g("old-open-action"), "compensate")).to.deep.include({ ran: true });
  expect(ran).to.deep.equal([`${g("old-open-try")}:cancel`, `${g("old-open-action")}:compensate`]);
}

async function expectRejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e as Error);
  expect(err, "expected a rejection").to.be.instanceOf(Error);
  expect(err!.message).to.match(re);
}
