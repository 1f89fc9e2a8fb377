import { expect } from "chai";
import { Pool } from "pg";
import { PGlite } from "@electric-sql/pglite";
import { pgClient, pgliteClient, type SqlClient } from "../transaction/store/sql-client";
import { openSqlStore } from "../transaction/store/sql-store";
import { MIGRATIONS, migrate } from "../transaction/store/migrations";
import { DEFAULT_SETTINGS, leaseMs } from "../transaction/coordinator/settings";
import type { NewBranch, NewGlobal, TxStore } from "../transaction/store/types";
import { usePostgres } from "./helpers/postgres";

const settings = { ...DEFAULT_SETTINGS, retryIntervalMs: 2_000, requestTimeoutMs: 4_000 };

function global(gid: string, over: Partial<NewGlobal> = {}): NewGlobal {
  return { gid, mode: "tcc", status: "prepared", settings, queryTarget: "", traceparent: "", owner: "me", nextAt: Date.now() + 60_000, timeoutAt: Date.now() + 60_000, ...over };
}

function branch(id: string, op: NewBranch["op"], payload = [1, 2, 3]): NewBranch {
  return { branchId: id, op, target: "etcd:///bank", method: `/bank.Account/${op}`, payload: Uint8Array.from(payload), after: [] };
}

/** The statements each store method became (one per call where it used to be several) keep their meaning. */
function storeSpecs(open: () => Promise<{ store: TxStore; db: SqlClient }>, concurrent: boolean) {
  let store: TxStore;
  let db: SqlClient;
  before(async () => ({ store, db } = await open()));

  it("creates a transaction with its branches in one statement, and a taken gid changes nothing", async () => {
    expect(await store.create(global("c1", { mode: "saga", status: "submitted" }), [branch("01", "action"), branch("01", "compensate"), branch("02", "action")])).to.equal(true);
    expect(await store.create(global("c1", { mode: "saga", status: "submitted" }), [branch("09", "action", [9])])).to.equal(false);
    const rows = await store.branches("c1");
    expect(rows.map((b) => [b.branchId, b.op, b.seq])).to.deep.equal([["01", "action", 0], ["01", "compensate", 1], ["02", "action", 2]]);
    expect(Array.from(rows[0]!.payload)).to.deep.equal([1, 2, 3]);
    expect(await store.create(global("c2"), [])).to.equal(true);
    expect(await store.branches("c2")).to.deep.equal([]);
  });

  it("adds TCC branches only while the transaction is prepared, of that mode, numbering them in order", async () => {
    expect(await store.create(global("r1"), [])).to.equal(true);
    const adds = Array.from({ length: 10 }, (_, i) => [branch(String(i).padStart(2, "0"), "confirm"), branch(String(i).padStart(2, "0"), "cancel")]);
    // On Postgres these run on separate connections at once: the counter must still hand out distinct numbers.
    const results = concurrent ? await Promise.all(adds.map((ops) => store.addBranches("r1", { status: "prepared", mode: "tcc" }, ops))) : await sequential(adds.map((ops) => () => store.addBranches("r1", { status: "prepared", mode: "tcc" }, ops)));
    expect(results.every(Boolean)).to.equal(true);
    const seqs = (await store.branches("r1")).map((b) => b.seq);
    expect(seqs).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    expect(await store.addBranches("r1", { status: "prepared", mode: "msg" }, [branch("50", "confirm")])).to.equal(false);
    expect(await store.addBranches("missing", { status: "prepared", mode: "tcc" }, [branch("50", "confirm")])).to.equal(false);
    expect(await store.submitPrepared("r1", ["tcc"], Date.now())).to.not.equal(undefined);
    expect(await store.addBranches("r1", { status: "prepared", mode: "tcc" }, [branch("50", "confirm")])).to.equal(false);
    expect((await store.branches("r1")).length).to.equal(20);
  });

  it("submits a prepared transaction once, leasing it for the first round from its stored settings", async () => {
    expect(await store.create(global("s1"), [])).to.equal(true);
    const now = Date.now();
    const g = await store.submitPrepared("s1", ["tcc", "msg"], now);
    expect(g?.status).to.equal("submitted");
    expect(g?.nextAt).to.equal(now + leaseMs(settings, 1));
    expect(await store.submitPrepared("s1", ["tcc", "msg"], now)).to.equal(undefined);
    expect(await store.create(global("s2", { mode: "saga" }), [])).to.equal(true);
    expect(await store.submitPrepared("s2", ["tcc", "msg"], now)).to.equal(undefined);
    expect((await store.get("s2"))?.status).to.equal("prepared");
  });

  it("records a round's successful calls with the move that ends it, even when another instance moved it first", async () => {
    expect(await store.create(global("m1", { status: "submitted" }), [branch("01", "confirm"), branch("02", "confirm"), branch("03", "confirm")])).to.equal(true);
    const at = Date.now();
    expect(await store.setStatus("m1", ["submitted"], "succeed", at, { calls: [{ branchId: "01", op: "confirm", at }, { branchId: "02", op: "confirm", at }] })).to.equal(true);
    expect(await store.setStatus("m1", ["submitted"], "succeed", at + 1, { calls: [{ branchId: "03", op: "confirm", at: at + 1 }] })).to.equal(false);
    const rows = await store.branches("m1");
    expect(rows.map((b) => [b.branchId, b.status, b.attempts])).to.deep.equal([["01", "succeed", 1], ["02", "succeed", 1], ["03", "succeed", 1]]);
    const g = await store.get("m1");
    expect([g?.status, g?.finishedAt]).to.deep.equal(["succeed", at]);

    expect(await store.create(global("m2", { status: "submitted" }), [branch("01", "confirm"), branch("02", "confirm")])).to.equal(true);
    await store.reschedule("m2", at + 5_000, "branch 02: UNAVAILABLE", at, [{ branchId: "01", op: "confirm", at }]);
    expect((await store.branches("m2")).map((b) => b.status)).to.deep.equal(["succeed", "prepared"]);
    expect((await store.get("m2"))?.nextAt).to.equal(at + 5_000);
  });

  it("brings a first-version schema up to date, counting the branches already stored", async () => {
    await db.query(`CREATE SCHEMA old_tx`);
    try {
      await db.query(`SET search_path TO old_tx`);
      await db.query(`CREATE TABLE protomesh_tx_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)`);
      for (const statement of MIGRATIONS[0]!.sql.split(/;\s*\n/).map((x) => x.trim()).filter(Boolean)) await db.query(statement);
      await db.query(`INSERT INTO protomesh_tx_schema VALUES (1, 0)`);
      await db.query(`INSERT INTO protomesh_tx_global (gid, mode, status, settings, next_at, timeout_at, created_at, updated_at) VALUES ('old', 'tcc', 'prepared', $1, 0, 0, 0, 0)`, [JSON.stringify(settings)]);
      await db.query(`INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, updated_at) VALUES ('old', '01', 'confirm', 0, 't', 'm', '\\x00', 0), ('old', '01', 'cancel', 1, 't', 'm', '\\x00', 0)`);
      expect(await migrate(db)).to.equal(MIGRATIONS.length - 1);
      const old = await openSqlStore(db);
      expect(await old.addBranches("old", { status: "prepared", mode: "tcc" }, [branch("02", "confirm"), branch("02", "cancel")])).to.equal(true);
      expect((await old.branches("old")).map((b) => b.seq)).to.deep.equal([0, 1, 2, 3]);
    } finally {
      await db.query(`SET search_path TO public`);
      await db.query(`DROP SCHEMA old_tx CASCADE`);
    }
  });
}

async function sequential<T>(fns: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = [];
  for (const fn of fns) out.push(await fn());
  return out;
}

describe("coordinator store statements", function () {
  this.timeout(120_000);

  describe("on Postgres (pg)", () => {
    const pg = usePostgres();
    storeSpecs(async () => {
      // One connection for the schema spec's search_path; a pool of several for the concurrent adds.
      const pool = new Pool({ connectionString: pg.server.url, max: 8 });
      pg.beforeStop(() => pool.end());
      const single = new Pool({ connectionString: pg.server.url, max: 1 });
      pg.beforeStop(() => single.end());
      return { store: await openSqlStore(pgClient(pool)), db: pgClient(single) };
    }, true);

    it("shares statements between concurrent creations and moves, with each one's own outcome", async () => {
      const pool = new Pool({ connectionString: pg.server.url, max: 4 });
      try {
        const db = pgClient(pool);
        let statements = 0;
        const store = await openSqlStore({ ...db, query: (sql, params) => (statements++, db.query(sql, params)) });
        expect(await store.create(global("b-taken"), [])).to.equal(true);
        statements = 0;
        const saga = (gid: string, ids = ["01", "02"]) => store.create(global(gid, { mode: "saga", status: "submitted" }), ids.flatMap((id) => [branch(id, "action", [Number(id)]), branch(id, "compensate")]));
        // Sent at once: most share statements. The same gid twice and a gid already stored are among them.
        const created = await Promise.all([saga("b1"), saga("b2"), saga("b1", ["09"]), saga("b-taken"), ...Array.from({ length: 20 }, (_, i) => saga(`b-more-${i}`))]);
        expect(created.slice(0, 4)).to.deep.equal([true, true, false, false]);
        expect(created.slice(4).every(Boolean)).to.equal(true);
        expect(statements).to.be.lessThan(8);
        // One whose branches collide fails alone (its shared statement is retried one by one).
        // (The first two go alone, the next three together: two statements are in flight at most.)
        const outcomes = await Promise.allSettled([saga("b6"), saga("b7"), saga("b3", ["01", "01"]), saga("b4"), saga("b5")]);
        expect(outcomes.map((r) => (r.status === "fulfilled" ? r.value : "rejected"))).to.deep.equal([true, true, "rejected", true, true]);
        expect((await store.branches("b1")).map((b) => [b.branchId, b.op, b.seq, Array.from(b.payload)])).to.deep.equal([["01", "action", 0, [1]], ["01", "compensate", 1, [1, 2, 3]], ["02", "action", 2, [2]], ["02", "compensate", 3, [1, 2, 3]]]);
        expect(await store.get("b3")).to.equal(undefined);
        expect((await store.branches("b5")).length).to.equal(4);
        expect((await store.get("b-taken"))?.mode).to.equal("tcc");

        const at = Date.now();
        statements = 0;
        const moved = await Promise.all([
          store.setStatus("b1", ["submitted"], "succeed", at, { calls: [{ branchId: "01", op: "action", at }, { branchId: "02", op: "action", at }] }),
          store.setStatus("b2", ["prepared"], "succeed", at, { calls: [{ branchId: "01", op: "action", at }] }),
          store.setStatus("b1", ["submitted"], "failed", at, { lastError: "late" }),
          store.setStatus("missing", ["submitted"], "failed", at),
          ...Array.from({ length: 20 }, (_, i) => store.setStatus(`b-more-${i}`, ["submitted", "aborting"], "aborting", at, { lastError: `why ${i}`, nextAt: at + i })),
        ]);
        expect(moved.slice(0, 4)).to.deep.equal([true, false, false, false]);
        expect(moved.slice(4).every(Boolean)).to.equal(true);
        expect(statements).to.be.lessThan(8);
        const b1 = await store.get("b1");
        expect([b1?.status, b1?.finishedAt, b1?.lastError]).to.deep.equal(["succeed", at, ""]);
        expect((await store.branches("b1")).map((b) => [b.status, b.attempts])).to.deep.equal([["succeed", 1], ["prepared", 0], ["succeed", 1], ["prepared", 0]]);
        // A move that did not happen still records its calls.
        expect((await store.get("b2"))?.status).to.equal("submitted");
        expect((await store.branches("b2")).map((b) => b.status)).to.deep.equal(["succeed", "prepared", "prepared", "prepared"]);
        const more = await store.get("b-more-7");
        expect([more?.status, more?.lastError, more?.nextAt, more?.finishedAt]).to.deep.equal(["aborting", "why 7", at + 7, 0]);

        // TCC registrations and commits.
        const tccs = Array.from({ length: 8 }, (_, i) => `t${i}`);
        for (const gid of tccs) expect(await store.create(global(gid), [branch("01", "confirm"), branch("01", "cancel")])).to.equal(true);
        const register = (gid: string, id: string, where = { status: "prepared" as const, mode: "tcc" as const }) => store.addBranches(gid, where, [branch(id, "confirm", [Number(id)]), branch(id, "cancel", [Number(id)])]);
        statements = 0;
        const added = await Promise.allSettled([
          ...tccs.flatMap((gid) => [register(gid, "02"), register(gid, "03")]),
          register("missing", "02"),
          register("t0", "04", { status: "prepared", mode: "msg" as never }),
          register("t1", "02"),
        ]);
        expect(added.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as { code?: string }).code))).to.deep.equal([...tccs.flatMap(() => [true, true]), false, false, "23505"]);
        expect(statements).to.be.lessThan(16);
        for (const gid of tccs) expect((await store.branches(gid)).map((b) => [b.branchId, b.op, b.seq])).to.deep.equal([["01", "confirm", 0], ["01", "cancel", 1], ["02", "confirm", 2], ["02", "cancel", 3], ["03", "confirm", 4], ["03", "cancel", 5]]);
        expect(Array.from((await store.branches("t5"))[4]!.payload)).to.deep.equal([3]);

        const now = Date.now();
        statements = 0;
        const submitted = await Promise.all([...tccs.map((gid) => store.submitPrepared(gid, ["tcc", "msg"], now)), store.submitPrepared("t0", ["tcc"], now), store.submitPrepared("b1", ["tcc"], now), store.submitPrepared("missing", ["tcc"], now)]);
        expect(submitted.map((g) => g && [g.gid, g.status, g.nextAt])).to.deep.equal([...tccs.map((gid) => [gid, "submitted", now + leaseMs(settings, 1)]), undefined, undefined, undefined]);
        expect(statements).to.be.lessThan(8);
      } finally {
        await pool.end();
      }
    });

    it("reads a committed transaction's branches with the commit, unless a registration slipped in while it waited", async () => {
      const pool = new Pool({ connectionString: pg.server.url, max: 4 });
      try {
        const store = await openSqlStore(pgClient(pool));
        expect(await store.create(global("sb1"), [branch("01", "confirm"), branch("01", "cancel")])).to.equal(true);
        expect(await store.addBranches("sb1", { status: "prepared", mode: "tcc" }, [branch("02", "confirm", [2]), branch("02", "cancel")])).to.equal(true);
        const g = await store.submitPrepared("sb1", ["tcc"], Date.now());
        expect(g?.branches?.map((b) => [b.branchId, b.op, b.seq, b.status, Array.from(b.payload)])).to.deep.equal([["01", "confirm", 0, "prepared", [1, 2, 3]], ["01", "cancel", 1, "prepared", [1, 2, 3]], ["02", "confirm", 2, "prepared", [2]], ["02", "cancel", 3, "prepared", [1, 2, 3]]]);
        expect(await store.create(global("sb2"), [])).to.equal(true);
        expect((await store.submitPrepared("sb2", ["tcc"], Date.now()))?.branches).to.deep.equal([]);

        // A registration holds the row; the commit waits for it, and its snapshot does not hold the new branch.
        expect(await store.create(global("sb3"), [branch("01", "confirm"), branch("01", "cancel")])).to.equal(true);
        const conn = await pool.connect();
        try {
          await conn.query("BEGIN");
          await conn.query("UPDATE protomesh_tx_global SET branch_count = branch_count + 1 WHERE gid = 'sb3'");
          const submitting = store.submitPrepared("sb3", ["tcc"], Date.now());
          await new Promise((r) => setTimeout(r, 300));
          await conn.query("INSERT INTO protomesh_tx_branch (gid, branch_id, op, seq, target, method, payload, updated_at) VALUES ('sb3', '02', 'confirm', 2, 't', 'm', '\\x00', 0)");
          await conn.query("COMMIT");
          const late = await submitting;
          expect(late?.status).to.equal("submitted");
          expect(late?.branches).to.equal(undefined);
        } finally {
          conn.release();
        }
        expect((await store.branches("sb3")).length).to.equal(3);
      } finally {
        await pool.end();
      }
    });

    it("prepares each statement with parameters once per connection, by name", async () => {
      const single = new Pool({ connectionString: pg.server.url, max: 1 });
      try {
        const store = await openSqlStore(pgClient(single));
        const prepared = async () => (await single.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE name LIKE 'protomesh_tx_%' ORDER BY name`)).rows.map((r) => r.name);
        expect(await store.create(global("p1", { mode: "saga", status: "submitted" }), [branch("01", "action"), branch("01", "compensate")])).to.equal(true);
        const once = await prepared();
        expect(once.length).to.be.greaterThan(0);
        expect(await store.create(global("p2", { mode: "saga", status: "submitted" }), [branch("01", "action"), branch("01", "compensate")])).to.equal(true);
        expect(await store.create(global("p2", { mode: "saga", status: "submitted" }), [branch("01", "action"), branch("01", "compensate")])).to.equal(false);
        expect(await prepared()).to.deep.equal(once);
        expect((await store.branches("p2")).map((b) => [b.branchId, b.op])).to.deep.equal([["01", "action"], ["01", "compensate"]]);
      } finally {
        await single.end();
      }
    });
  });

  describe("on PGlite (the embedded store)", () => {
    let lite: PGlite | undefined;
    after(async () => lite?.close());
    storeSpecs(async () => {
      lite = await PGlite.create();
      const db = pgliteClient(lite);
      return { store: await openSqlStore(db), db };
    }, false);
  });
});
