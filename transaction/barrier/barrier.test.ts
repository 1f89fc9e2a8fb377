import { expect } from "chai";
import { PGlite } from "@electric-sql/pglite";
import Database from "better-sqlite3";
import { RpcError, Status } from "../../runtime/errors";
import { pgliteBarrier } from "./adapter-pglite";
import { sqliteBarrier } from "./adapter-sqlite";
import type { Barrier } from "./barrier";
import { checkBarrierInterleavings, type ModelDb } from "../../test/helpers/barrier-model";
import { checkPrune } from "../../test/helpers/barrier-prune";

const ACCOUNT_PG = "CREATE TABLE account (id text PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0), frozen bigint NOT NULL CHECK (frozen >= 0))";

async function pgliteModel(): Promise<ModelDb<import("@electric-sql/pglite").Transaction> & { db: PGlite }> {
  const db = await PGlite.create();
  const barrier = pgliteBarrier(db);
  await barrier.driver.createTable();
  await db.exec(ACCOUNT_PG);
  return {
    db,
    barrier,
    open: async (id) => void (await db.query("INSERT INTO account VALUES ($1, 100, 0)", [id])),
    exec: async (tx, sql, id) => (await tx.query(sql, [id])).affectedRows ?? 0,
    read: async (id) => {
      const r = await db.query<{ available: number; frozen: number }>("SELECT available, frozen FROM account WHERE id = $1", [id]);
      return { available: Number(r.rows[0]!.available), frozen: Number(r.rows[0]!.frozen) };
    },
  };
}

function sqliteModel(): ModelDb<Database.Database> & { db: Database.Database } {
  const db = new Database(":memory:");
  const barrier = sqliteBarrier(db);
  void barrier.driver.createTable();
  db.exec(ACCOUNT_PG.replace(/bigint/g, "INTEGER"));
  return {
    db,
    barrier,
    open: async (id) => void db.prepare("INSERT INTO account VALUES (?, 100, 0)").run(id),
    exec: async (tx, sql, id) => tx.prepare(sql.replace("$1", "?")).run(id).changes,
    read: async (id) => db.prepare("SELECT available, frozen FROM account WHERE id = ?").get(id) as { available: number; frozen: number },
  };
}

/** Cases every adapter must get right, written out one by one. */
function namedCases<Tx>(make: () => Promise<{ barrier: Barrier<Tx> }>): void {
  let barrier: Barrier<Tx>;
  before(async () => {
    barrier = (await make()).barrier;
  });
  const call = (gid: string, op: "try" | "confirm" | "cancel" | "action" | "compensate") => ({ mode: "tcc", gid, branchId: "01", op }) as const;

  it("runs a Try once and skips its duplicate", async () => {
    let runs = 0;
    const first = await barrier.run(call("dup", "try"), async () => ++runs);
    const second = await barrier.run(call("dup", "try"), async () => ++runs);
    expect(first).to.deep.equal({ ran: true, value: 1 });
    expect(second).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
    expect(runs).to.equal(1);
  });

  it("turns a Cancel that arrives before its Try into an empty compensation, and the late Try into a no-op", async () => {
    let runs = 0;
    expect(await barrier.run(call("empty", "cancel"), async () => ++runs)).to.deep.equal({ ran: false, skipped: "empty-compensation" });
    expect(await barrier.run(call("empty", "try"), async () => ++runs)).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
    expect(runs).to.equal(0);
  });

  it("rolls the barrier row back with the business change, so a Try that failed leaves an empty compensation", async () => {
    const err = await barrier.run(call("fail", "try"), async () => {
      throw new RpcError(Status.ABORTED, "insufficient funds");
    }).catch((e: unknown) => e);
    expect(RpcError.from(err).code).to.equal(Status.ABORTED);
    expect(await barrier.run(call("fail", "cancel"), async () => "undo")).to.deep.equal({ ran: false, skipped: "empty-compensation" });
  });

  it("reports a Cancel that refuses as retry-later, never as a failure", async () => {
    await barrier.run(call("refuse", "try"), async () => undefined);
    const err = await barrier.run(call("refuse", "cancel"), async () => {
      throw new RpcError(Status.ABORTED, "no");
    }).catch((e: unknown) => RpcError.from(e));
    expect((err as RpcError).code).to.equal(Status.FAILED_PRECONDITION);
    expect(await barrier.run(call("refuse", "cancel"), async () => "undone")).to.deep.equal({ ran: true, value: "undone" });
  });

  it("answers a query-back: committed after the producer's local transaction, rolled back otherwise, and a late producer cannot commit", async () => {
    await barrier.prepareMessage("m-ok", async () => undefined);
    expect(await barrier.queryPrepared("m-ok")).to.equal("committed");
    expect(await barrier.queryPrepared("m-never")).to.equal("rolledback");
    const late = await barrier.prepareMessage("m-never", async () => "too late").catch((e: unknown) => RpcError.from(e));
    expect((late as RpcError).code).to.equal(Status.ABORTED);
    const failed = await barrier.prepareMessage("m-fail", async () => {
      throw new Error("local failure");
    }).catch((e: unknown) => e);
    expect(failed).to.be.instanceOf(Error);
    expect(await barrier.queryPrepared("m-fail")).to.equal("rolledback");
  });

  it("refuses a call without transaction metadata", async () => {
    const { Metadata } = await import("@grpc/grpc-js");
    const err = await barrier.run({ metadata: new Metadata() } as never, async () => 1).catch((e: unknown) => RpcError.from(e));
    expect((err as RpcError).code).to.equal(Status.INVALID_ARGUMENT);
  });
}

describe("barrier on PGlite", function () {
  this.timeout(120_000);
  namedCases(pgliteModel);
  it("keeps the business effect exactly once for any interleaving of Try/Confirm/Cancel and action/compensate", async () => {
    const m = await pgliteModel();
    try {
      await checkBarrierInterleavings(m, 30);
    } finally {
      await m.db.close();
    }
  });
  it("prunes old rows of closed branches only, and stays exactly once for replays inside the retention window", async () => {
    const m = await pgliteModel();
    try {
      await checkPrune(
        {
          barrier: m.barrier,
          run: async (sql) => (await m.db.query(sql)).affectedRows ?? 0,
          rows: async (gid) => (await m.db.query<{ k: string }>("SELECT branch_id || '/' || op AS k FROM protomesh_barrier WHERE gid = $1 ORDER BY k", [gid])).rows.map((r) => r.k),
        },
        "pglite",
      );
    } finally {
      await m.db.close();
    }
  });
});

describe("barrier on SQLite (better-sqlite3)", function () {
  this.timeout(120_000);
  namedCases(async () => sqliteModel());
  it("keeps the business effect exactly once for any interleaving of Try/Confirm/Cancel and action/compensate", async () => {
    const m = sqliteModel();
    try {
      await checkBarrierInterleavings(m, 100);
    } finally {
      m.db.close();
    }
  });
  it("prunes old rows of closed branches only, and stays exactly once for replays inside the retention window", async () => {
    const m = sqliteModel();
    try {
      await checkPrune(
        {
          barrier: m.barrier,
          run: async (sql) => m.db.prepare(sql).run().changes,
          rows: async (gid) => (m.db.prepare("SELECT branch_id || '/' || op AS k FROM protomesh_barrier WHERE gid = ? ORDER BY k").all(gid) as Array<{ k: string }>).map((r) => r.k),
        },
        "sqlite",
      );
    } finally {
      m.db.close();
    }
  });
  it("prunes periodically until stopped, reporting each run", async () => {
    const m = sqliteModel();
    try {
      expect(() => m.barrier.startPruning({ olderThanMs: 1 })).to.throw(RangeError);
      await m.barrier.run({ mode: "tcc", gid: "p", branchId: "01", op: "cancel" }, async () => undefined);
      m.db.prepare("UPDATE protomesh_barrier SET created_at = created_at - 7200000").run();
      const results: unknown[] = [];
      let done!: () => void;
      const first = new Promise<void>((r) => (done = r));
      const stop = m.barrier.startPruning({ olderThanMs: 3_600_000, everyMs: 1000, onResult: (r) => void (results.push(r), done()) });
      await first;
      stop();
      expect(results[0]).to.deep.equal({ deleted: 2 });
    } finally {
      m.db.close();
    }
  });
});
