import { expect } from "chai";
import { PGlite } from "@electric-sql/pglite";
import { Pool } from "pg";
import { main } from "../cli/main";
import { createClient } from "../runtime/client";
import { RpcError, Status } from "../runtime/errors";
import { createTxServer, embeddedStore, postgresStore, type TxServer, type TxStore } from "../transaction";
import { TxCoordinatorDefinition } from "../gen/protomesh/transaction/v1/coordinator_protomesh";
import { DEFAULT_SETTINGS } from "../transaction/coordinator/settings";
import { listQuery } from "../transaction/store/sql-store";
import type { TxMode, TxStatus } from "../transaction/store/types";
import { usePostgres } from "./helpers/postgres";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Runs one SQL statement on the store's own database, beside the store (to age rows, to read plans). */
type Sql = (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/**
 * Stores rows the way the coordinator does, then moves their `created_at` back: the store stamps
 * rows with its clock, and no test should wait hours for a row to become old.
 */
async function seed(store: TxStore, sql: Sql, rows: ReadonlyArray<{ gid: string; status: TxStatus; mode?: TxMode; ageMs: number }>): Promise<void> {
  const now = Date.now();
  for (const r of rows) {
    // next_at a day ahead: a running coordinator leaves these rows alone.
    const created = await store.create({ gid: r.gid, mode: r.mode ?? "saga", status: r.status, settings: DEFAULT_SETTINGS, queryTarget: "", traceparent: "", owner: "spec", nextAt: now + DAY, timeoutAt: now + DAY }, []);
    expect(created, r.gid).to.equal(true);
    await sql(`UPDATE protomesh_tx_global SET created_at = $2 WHERE gid = $1`, [r.gid, now - r.ageMs]);
  }
}

const ROWS = [
  { gid: "old-prepared", status: "prepared", mode: "tcc", ageMs: 3 * HOUR },
  { gid: "old-succeed", status: "succeed", ageMs: 2 * HOUR },
  { gid: "old-aborting", status: "aborting", mode: "tcc", ageMs: 90 * 60_000 },
  { gid: "mid-submitted", status: "submitted", ageMs: 30 * 60_000 },
  { gid: "new-failed", status: "failed", ageMs: 0 },
  { gid: "new-submitted", status: "submitted", ageMs: 0 },
] as const;

const gids = (rows: ReadonlyArray<{ gid: string }>) => rows.map((r) => r.gid);

/** The same behaviour asked of every store the coordinator runs on. */
function storeSpecs(open: () => Promise<{ store: TxStore; sql: Sql; close(): Promise<void> }>): void {
  let store: TxStore;
  let sql: Sql;
  let close: () => Promise<void>;

  before(async function () {
    this.timeout(60_000);
    ({ store, sql, close } = await open());
    await seed(store, sql, ROWS);
  });
  after(async () => close?.());

  it("lists only transactions created at or before the cut, newest first", async () => {
    const cut = Date.now() - HOUR;
    expect(gids(await store.list({ createdAtOrBefore: cut, limit: 50 }))).to.deep.equal(["old-aborting", "old-succeed", "old-prepared"]);
    expect(gids(await store.list({ createdAtOrBefore: Date.now() - 10 * HOUR, limit: 50 }))).to.deep.equal([]);
    expect(await store.list({ createdAtOrBefore: -1, limit: 50 })).to.deep.equal([]);
  });

  it("lists the stuck ones: unfinished and older than the cut, alone or with status and mode", async () => {
    const cut = Date.now() - HOUR;
    expect(gids(await store.list({ unfinished: true, createdAtOrBefore: cut, limit: 50 }))).to.deep.equal(["old-aborting", "old-prepared"]);
    expect(gids(await store.list({ unfinished: true, limit: 50 }))).to.deep.equal(["new-submitted", "mid-submitted", "old-aborting", "old-prepared"]);
    expect(gids(await store.list({ unfinished: true, status: "prepared", createdAtOrBefore: cut, limit: 50 }))).to.deep.equal(["old-prepared"]);
    expect(gids(await store.list({ unfinished: true, mode: "saga", createdAtOrBefore: Date.now() - 10 * 60_000, limit: 50 }))).to.deep.equal(["mid-submitted"]);
  });

  it("pages through old transactions with the page token", async () => {
    const cut = Date.now() - HOUR;
    const first = await store.list({ createdAtOrBefore: cut, limit: 2 });
    expect(gids(first)).to.deep.equal(["old-aborting", "old-succeed"]);
    const last = first[1]!;
    expect(gids(await store.list({ createdAtOrBefore: cut, limit: 2, before: { createdAt: last.createdAt, gid: last.gid } }))).to.deep.equal(["old-prepared"]);
  });

  it("reads the stuck view from the index of unfinished rows, not by scanning finished ones", async function () {
    this.timeout(60_000);
    // A long-running coordinator's table during an outage: many finished rows, and a backlog of
    // recent unfinished ones that are not (yet) stuck. Neither may be walked row by row.
    const now = Date.now();
    await sql(`INSERT INTO protomesh_tx_global (gid, mode, status, settings, next_at, timeout_at, created_at, updated_at)
               SELECT 'done-' || i, 'saga', 'succeed', '{}', 0, 0, $1::bigint - i, $1::bigint - i FROM generate_series(1, 20000) AS i`, [now - 2 * HOUR]);
    await sql(`INSERT INTO protomesh_tx_global (gid, mode, status, settings, next_at, timeout_at, created_at, updated_at)
               SELECT 'backlog-' || i, 'saga', 'submitted', '{}', $1::bigint + i, 0, $1::bigint - i, $1::bigint - i FROM generate_series(1, 5000) AS i`, [now]);
    await sql(`ANALYZE protomesh_tx_global`);
    const { sql: text, params } = listQuery({ unfinished: true, createdAtOrBefore: Date.now() - HOUR, limit: 50 });
    const plan = JSON.stringify(await sql(`EXPLAIN (FORMAT JSON) ${text}`, params));
    expect(plan).to.include("protomesh_tx_global_unfinished_created");
    expect(plan).not.to.include("Seq Scan");
    expect(gids(await store.list({ unfinished: true, createdAtOrBefore: Date.now() - HOUR, limit: 50 }))).to.deep.equal(["old-aborting", "old-prepared"]);
  });
}

describe("transaction store: list by age (real Postgres)", function () {
  this.timeout(60_000);
  const pg = usePostgres();
  storeSpecs(async () => {
    const url = await pg.server.createDatabase("tx_age");
    const pool = new Pool({ connectionString: url, max: 2 });
    pool.on("error", () => undefined);
    const store = await postgresStore(url);
    pg.beforeStop(() => pool.end());
    return {
      store,
      sql: async (text, params) => (await pool.query(text, params)).rows as Array<Record<string, unknown>>,
      close: async () => {
        await store.close();
        await pool.end().catch(() => undefined);
      },
    };
  });
});

describe("transaction store: list by age (embedded PGlite)", function () {
  this.timeout(60_000);
  storeSpecs(async () => {
    const db = await PGlite.create();
    const store = await embeddedStore(db);
    return {
      store,
      sql: async (text, params) => (await db.query<Record<string, unknown>>(text, params)).rows,
      close: async () => {
        await store.close();
        await db.close();
      },
    };
  });
});

describe("coordinator List and `protomesh tx list` by age", function () {
  this.timeout(60_000);
  let db: PGlite;
  let tx: TxServer;
  let address: string;

  before(async function () {
    this.timeout(60_000);
    db = await PGlite.create();
    tx = await createTxServer({ store: await embeddedStore(db), closeStore: true, pollIntervalMs: 60_000 });
    await tx.listen("127.0.0.1:0");
    address = tx.server.address!;
    await seed(tx.store, async (text, params) => (await db.query<Record<string, unknown>>(text, params)).rows, ROWS);
  });
  after(async () => {
    await tx?.shutdown();
    await db?.close();
  });

  const cli = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(["tx", ...args], { cwd: process.cwd(), env: {}, out: (s) => void out.push(s), err: (s) => void err.push(s) });
    return { code, out: out.join(""), err: err.join("") };
  };

  it("answers List with older_than_ms and unfinished, and refuses a final status with unfinished", async () => {
    const co = createClient(TxCoordinatorDefinition, address, { defaultDeadlineMs: 10_000 });
    try {
      expect(gids((await co.list({ olderThanMs: HOUR })).transactions)).to.deep.equal(["old-aborting", "old-succeed", "old-prepared"]);
      expect(gids((await co.list({ olderThanMs: HOUR, unfinished: true })).transactions)).to.deep.equal(["old-aborting", "old-prepared"]);
      // An age before the epoch is an empty answer, not a store error.
      expect((await co.list({ olderThanMs: Number.MAX_SAFE_INTEGER })).transactions).to.deep.equal([]);
      const refused = await co.list({ unfinished: true, status: "succeed" }).then(() => undefined, (e: unknown) => RpcError.from(e));
      expect(refused?.code).to.equal(Status.INVALID_ARGUMENT);
      expect(refused?.rawMessage).to.match(/status "succeed" is final/);
    } finally {
      co.$close();
    }
  });

  it("lists old and stuck transactions with --older-than and --stuck", async () => {
    const old = await cli(["list", "--older-than", "1h", "--coordinator", address]);
    expect(old.code, old.err).to.equal(0);
    expect(old.out).to.include("old-prepared").and.include("old-succeed").and.include("old-aborting");
    expect(old.out).not.to.include("mid-submitted");
    const stuck = await cli(["list", "--stuck", "1h", "--coordinator", address, "--json"]);
    expect(stuck.code, stuck.err).to.equal(0);
    expect((JSON.parse(stuck.out) as { transactions: Array<{ gid: string }> }).transactions.map((t) => t.gid)).to.deep.equal(["old-aborting", "old-prepared"]);
    const unfinished = await cli(["list", "--unfinished", "--older-than", "20m", "--mode", "saga", "--coordinator", address, "--json"]);
    expect((JSON.parse(unfinished.out) as { transactions: Array<{ gid: string }> }).transactions.map((t) => t.gid)).to.deep.equal(["mid-submitted"]);
    const none = await cli(["list", "--stuck", "5h", "--coordinator", address]);
    expect(none.code).to.equal(0);
    expect(none.out).to.include("(none: no unfinished transaction begun 5h ago or earlier)");
  });

  it("answers a bad age, status or mode, or a list option on another verb, with a usage error (exit 2) before calling anyone", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["list", "--older-than", "soon"], /--older-than must be an age such as 30s, 10m, 2h or 1h30m, got "soon"/],
      [["list", "--older-than", "5 minutes"], /--older-than must be an age/],
      [["list", "--stuck", "10"], /--stuck must be an age/],
      [["list", "--stuck", "1h", "--older-than", "2h"], /give --stuck or --older-than, not both/],
      [["list", "--stuck", "1h", "--status", "succeed"], /--status succeed is final: --stuck lists only prepared, submitted, aborting/],
      [["list", "--older-than"], /--older-than/],
      [["show", "old-prepared", "--stuck", "1h"], /go with list/],
      [["list", "--status", "bogus"], /--status must be one of prepared, submitted, aborting, succeed, failed, got "bogus"/],
      [["list", "--mode", "xa"], /--mode must be one of tcc, saga, msg, notify, got "xa"/],
      [["retry", "old-prepared", "--status", "failed"], /--status goes with list/],
      [["show", "old-prepared", "--limit", "3", "--page", "x"], /--limit, --page go with list/],
    ];
    for (const [args, message] of cases) {
      // An unreachable coordinator: had the command called it, the answer would be exit 1, not 2.
      const r = await cli([...args, "--coordinator", "127.0.0.1:1"]);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.err, args.join(" ")).to.match(message);
    }
    const help = await cli(["list", "--help"]);
    expect(help.code).to.equal(0);
    expect(help.out).to.match(/--older-than AGE/).and.match(/--stuck AGE/).and.match(/--unfinished/);
  });

  it("tx-server refuses a bad flag (a webhook that is not an http(s) URL) before opening a store", async () => {
    for (const [args, message] of [
      [["--alert-webhook", "hooks.example/alert"], /--alert-webhook must be an http:\/\/ or https:\/\/ URL, got "hooks\.example\/alert"/],
      [["--alert-webhook", "ftp://hooks.example/alert"], /--alert-webhook must be an http/],
      [["--metrics-port", "x"], /--metrics-port must be a whole number/],
    ] as Array<[string[], RegExp]>) {
      const err: string[] = [];
      // Had it started, it would serve until a signal: the spec would time out instead of failing fast.
      const code = await main(["tx-server", "--listen", "127.0.0.1:0", ...args], { cwd: process.cwd(), env: {}, out: () => undefined, err: (s) => void err.push(s) });
      expect(code, args.join(" ")).to.equal(2);
      expect(err.join(""), args.join(" ")).to.match(message);
    }
  });
});
