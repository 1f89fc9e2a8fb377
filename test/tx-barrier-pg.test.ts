import { expect } from "chai";
import { Pool } from "pg";
import { pgBarrier } from "../transaction/barrier/adapter-pg";
import { checkBarrierInterleavings } from "./helpers/barrier-model";
import { checkPrune } from "./helpers/barrier-prune";
import { usePostgres } from "./helpers/postgres";

describe("barrier on Postgres (pg)", function () {
  this.timeout(180_000);
  const pg = usePostgres();
  let pool: Pool;
  before(async () => {
    pool = new Pool({ connectionString: pg.server.url, max: 8 });
    pg.beforeStop(() => pool.end());
    await pool.query("CREATE TABLE account (id text PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0), frozen bigint NOT NULL CHECK (frozen >= 0))");
  });

  it("keeps the business effect exactly once for any interleaving, with calls really concurrent on separate connections", async () => {
    const barrier = pgBarrier(pool);
    await barrier.driver.createTable();
    await checkBarrierInterleavings(
      {
        barrier,
        open: async (id) => void (await pool.query("INSERT INTO account VALUES ($1, 100, 0)", [id])),
        exec: async (tx, sql, id) => (await tx.query(sql, [id])).rowCount ?? 0,
        read: async (id) => {
          const r = await pool.query("SELECT available, frozen FROM account WHERE id = $1", [id]);
          return { available: Number(r.rows[0].available), frozen: Number(r.rows[0].frozen) };
        },
      },
      80,
    );
  });

  it("stores ids with quotes and backslashes as they are (the inserts travel as literals with the BEGIN)", async () => {
    const barrier = pgBarrier(pool);
    await barrier.driver.createTable();
    const gid = `q'uo\\te'); DROP TABLE account; --`;
    const tried = await barrier.run({ mode: "tcc", gid, branchId: "0'1", op: "try" }, async () => "ran");
    expect(tried).to.deep.equal({ ran: true, value: "ran" });
    expect(await barrier.run({ mode: "tcc", gid, branchId: "0'1", op: "try" }, async () => "again")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
    // A Cancel for another branch of it, before its Try: an empty compensation that also blocks the late Try.
    expect(await barrier.run({ mode: "tcc", gid, branchId: "02\\", op: "cancel" }, async () => "undo")).to.deep.equal({ ran: false, skipped: "empty-compensation" });
    expect(await barrier.run({ mode: "tcc", gid, branchId: "02\\", op: "try" }, async () => "late")).to.deep.equal({ ran: false, skipped: "duplicate-or-hanging" });
    const rows = await pool.query<{ branch_id: string; op: string; reason: string }>("SELECT branch_id, op, reason FROM protomesh_barrier WHERE gid = $1 ORDER BY branch_id, op", [gid]);
    expect(rows.rows).to.deep.equal([
      { branch_id: "0'1", op: "try", reason: "try" },
      { branch_id: "02\\", op: "cancel", reason: "cancel" },
      { branch_id: "02\\", op: "try", reason: "cancel" },
    ]);
    expect((await pool.query("SELECT count(*)::int AS n FROM account")).rows[0].n).to.be.a("number");
  });

  it("makes a query-back wait for the producer's open local transaction instead of guessing", async () => {
    const barrier = pgBarrier(pool);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const producer = barrier.prepareMessage("qb-1", async () => {
      entered();
      await held;
    });
    await inside;
    let answered = false;
    const answer = barrier.queryPrepared("qb-1").then((a) => ((answered = true), a));
    // The query-back blocks on the row lock: give it a real chance to answer early (it must not).
    await pool.query("SELECT pg_sleep(0.3)");
    expect(answered).to.equal(false);
    release();
    await producer;
    expect(await answer).to.equal("committed");
  });

  it("prunes old rows of closed branches only, and stays exactly once for replays inside the retention window", async () => {
    const barrier = pgBarrier(pool);
    await barrier.driver.createTable();
    await checkPrune(
      {
        barrier,
        run: async (sql) => (await pool.query(sql)).rowCount ?? 0,
        rows: async (gid) => (await pool.query<{ k: string }>("SELECT branch_id || '/' || op AS k FROM protomesh_barrier WHERE gid = $1 ORDER BY k", [gid])).rows.map((r) => r.k),
      },
      "pg",
    );
  });
});
