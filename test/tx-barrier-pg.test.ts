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
