import { expect } from "chai";
import { Pool } from "pg";
import { RpcError, Status } from "../index";
import { AuditLog } from "../console/audit/audit-log";
import { openConsole, screenshot, waitForText, type ConsoleFixture } from "./helpers/console";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { startWorld, type World } from "./helpers/transfer-world";
import { waitFor } from "./helpers/wait";

describe("console: Transactions page (real Postgres, coordinator, banks, Chromium)", function () {
  this.timeout(180_000);
  // Postgres first: its after-hook (which closes the world) then runs while etcd still serves.
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  const namespace = uniqueNamespace();
  let w: World;
  let fx: ConsoleFixture;
  const page = () => fx.page;
  const gids = { tcc: "", saga: "", notify: "" };

  before(async function () {
    this.timeout(120_000);
    w = await startWorld(pg.server, etcd.endpoints, namespace, "ctx");
    pg.beforeStop(() => w.close());
    await w.startCoordinator();
    pg.beforeStop(() => fx?.close());
    fx = await openConsole({ endpoints: etcd.endpoints, namespace, transactions: { coordinator: "etcd:///ctx-tx" } });

    const { outcome } = await w.tx.tcc(async (t) => {
      await t.call(w.a, "debit", { account: "alice", amount: 100 });
      await t.call(w.b, "credit", { account: "bob", amount: 100 });
    });
    gids.tcc = outcome.gid;
    const bad = await w.tx.saga().step(w.b, "credit", "undoCredit", { account: "bob", amount: 7 }).step(w.a, "debit", "undoDebit", { account: "alice", amount: 10_000_000 }).submit();
    expect(bad.status).to.equal("failed");
    gids.saga = bad.gid;
    w.notifyBehaviour = async () => {
      throw new RpcError(Status.UNAVAILABLE, "receiver down");
    };
    gids.notify = (await w.tx.notify(w.notes, "transferDone", { from: "alice", to: "bob", amount: 1 }, { scheduleMs: [50, 50] })).gid;
    await waitFor(async () => (await w.tx.get(gids.notify)).status === "failed", { timeoutMs: 30_000, what: "the notification to give up" });
  });

  it("lists the coordinator's transactions and filters them by status and mode", async () => {
    await page().goto(`${fx.console.url}#/transactions`);
    for (const gid of Object.values(gids)) await page().locator(`.tx-row[data-gid="${gid}"]`).waitFor();
    await page().locator("#tx-status").selectOption("failed");
    await page().locator(`.tx-row[data-gid="${gids.tcc}"]`).waitFor({ state: "detached" });
    const statuses = await page().locator(".tx-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-status")));
    expect(statuses).to.have.length(2);
    expect(statuses.every((s) => s === "failed")).to.equal(true);
    await page().locator("#tx-mode").selectOption("notify");
    await page().locator(`.tx-row[data-gid="${gids.saga}"]`).waitFor({ state: "detached" });
    expect(await page().locator(".tx-row").count()).to.equal(1);
    await page().locator("#tx-mode").selectOption("tcc");
    await page().locator(".tx-none").waitFor();
  });

  it("shows a transaction's branches with their calls, recorded attempts and last errors", async () => {
    await page().locator("#tx-status").selectOption("");
    await page().locator("#tx-mode").selectOption("");
    await page().locator(`.tx-row[data-gid="${gids.saga}"]`).click();
    const failed = page().locator('.tx-detail .branch-row[data-branch="02"][data-op="action"]');
    await failed.waitFor();
    expect(await failed.getAttribute("data-status")).to.equal("failed");
    expect(await failed.locator(".last-error").textContent()).to.match(/insufficient funds/);
    expect(await page().locator('.tx-detail .branch-row[data-branch="01"][data-op="compensate"]').getAttribute("data-status")).to.equal("succeed");
    expect(await page().locator(".tx-last-error").textContent()).to.match(/insufficient funds/);

    await page().locator(`.tx-row[data-gid="${gids.notify}"]`).click();
    await page().locator(`.tx-detail[data-gid="${gids.notify}"]`).waitFor();
    const branch = page().locator(".tx-detail .branch-row").first();
    expect(Number(await branch.locator(".attempts").textContent())).to.be.at.least(3);
    expect(await branch.locator(".last-error").textContent()).to.include("receiver down");
    expect(await page().locator('.attempt-row[data-code="UNAVAILABLE"]').count()).to.be.at.least(3);
    expect(await page().locator(".tx-last-error").textContent()).to.match(/^gave up/);
    // The answer's branches carry no payload field (a Buffer would show as {"type":"Buffer",…}).
    const detail = await page().evaluate(async (gid) => (await fetch(`/api/transactions/${gid}`)).text(), gids.notify);
    expect(detail).to.include('"branches"').and.not.include('"payload":').and.not.include('"Buffer"');
  });

  it("retries a transaction that gave up, and records the retry in the audit log", async () => {
    w.notifyBehaviour = async () => ({});
    await page().locator("button.tx-retry").click();
    await waitForText(page(), ".tx-detail .tx-status", "succeed", 30_000);
    await screenshot(page(), "transactions");
    expect((await w.tx.get(gids.notify)).status).to.equal("succeed");
    const entry = (await new AuditLog(etcd.rawEtcd(), namespace, 3000).list()).find((e) => e.action === "tx.retry");
    expect(entry).to.deep.include({ who: "local", via: "console", target: `tx/${gids.notify}` });
    expect((entry!.before as { status: string }).status).to.equal("failed");
  });

  it("answers a retry the coordinator refuses with its reason, changing nothing", async () => {
    await page().locator(`.tx-row[data-gid="${gids.tcc}"]`).click();
    await page().locator(`.tx-detail[data-gid="${gids.tcc}"]`).waitFor();
    expect(await page().locator("button.tx-retry").isDisabled()).to.equal(true);
    const res = await page().evaluate(async (gid) => {
      const s = (await (await fetch("/api/session")).json()) as { csrf: string };
      const r = await fetch(`/api/transactions/${gid}/retry`, { method: "POST", headers: { "x-csrf-token": s.csrf } });
      return { status: r.status, error: ((await r.json()) as { error: string }).error };
    }, gids.tcc);
    expect(res.status).to.equal(409);
    expect(res.error).to.match(/FAILED_PRECONDITION: transaction .* succeeded; nothing to retry/);
  });

  it("says which transaction does not exist", async () => {
    await page().goto(`${fx.console.url}#/transactions/no-such-gid`);
    await waitForText(page(), ".tx-detail .tx-error", /NOT_FOUND: transaction no-such-gid not found/);
  });

  it("says at once when no coordinator is registered under the name it was given", async () => {
    const other = await openConsole({ endpoints: etcd.endpoints, namespace, transactions: { coordinator: "etcd:///nobody-tx" } });
    try {
      await other.page.goto(`${other.console.url}#/transactions`);
      await waitForText(other.page, ".tx-list .tx-error", /no transaction coordinator is registered as nobody-tx/);
    } finally {
      await other.close();
    }
  });

  it("shows an unreachable Postgres as a clear error on the page, and everything again once it is back", async () => {
    await page().goto(`${fx.console.url}#/transactions`);
    await page().locator(`.tx-row[data-gid="${gids.notify}"]`).waitFor();
    await pg.server.stop();
    try {
      await waitForText(page(), ".tx-list .tx-error", /UNAVAILABLE: transaction store unavailable/, 30_000);
      await screenshot(page(), "transactions-store-down");
    } finally {
      await pg.server.start();
    }
    await page().locator(".tx-list .tx-error").waitFor({ state: "detached", timeout: 30_000 });
    for (const gid of Object.values(gids)) await page().locator(`.tx-row[data-gid="${gid}"]`).waitFor();
  });

  it("filters by age and shows the stuck ones (unfinished and old), with the filter in the URL across a reload", async () => {
    // A TCC left prepared (its caller went away): the coordinator would abort it only after an hour.
    const stuck = `stuck-${Date.now()}`;
    await w.tx.coordinator.prepare({ gid: stuck, mode: "tcc", options: { timeoutMs: 3_600_000 } });
    // Rows are stamped with the coordinator's clock: two of them are moved two hours back instead of waiting.
    const pool = new Pool({ connectionString: w.storeUrl, max: 1 });
    try {
      await pool.query(`UPDATE protomesh_tx_global SET created_at = created_at - 7200000 WHERE gid = ANY($1)`, [[stuck, gids.tcc]]);
    } finally {
      await pool.end();
    }
    await page().goto(`${fx.console.url}#/transactions`);
    await page().locator(`.tx-row[data-gid="${stuck}"]`).waitFor();
    await page().locator("#tx-age").selectOption("1h");
    await page().locator(`.tx-row[data-gid="${gids.saga}"]`).waitFor({ state: "detached" });
    const old = await page().locator(".tx-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-gid")));
    // Newest first: both were moved back by the same two hours, and the stuck one began later.
    expect(old).to.deep.equal([stuck, gids.tcc]);
    await page().locator("#tx-stuck").check();
    await page().locator(`.tx-row[data-gid="${gids.tcc}"]`).waitFor({ state: "detached" });
    expect(await page().locator(".tx-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-status")))).to.deep.equal(["prepared"]);
    expect(new URL(page().url()).hash).to.equal("#/transactions?age=1h&stuck=1");
    await screenshot(page(), "transactions-stuck");

    await page().reload();
    await page().locator(`.tx-row[data-gid="${stuck}"]`).waitFor();
    expect(await page().locator("#tx-age").inputValue()).to.equal("1h");
    expect(await page().locator("#tx-stuck").isChecked()).to.equal(true);
    expect(await page().locator(".tx-row").count()).to.equal(1);
    // A transaction opened from the filtered list keeps the filter in the URL.
    await page().locator(`.tx-row[data-gid="${stuck}"]`).click();
    await page().locator(`.tx-detail[data-gid="${stuck}"]`).waitFor();
    expect(new URL(page().url()).hash).to.equal(`#/transactions/${stuck}?age=1h&stuck=1`);

    const bad = await page().evaluate(async () => {
      const r = await fetch("/api/transactions?olderThanMs=soon");
      return { status: r.status, error: ((await r.json()) as { error: string }).error };
    });
    expect(bad).to.deep.equal({ status: 400, error: 'olderThanMs must be a whole number of milliseconds, got "soon"' });
    await w.tx.coordinator.stop({ gid: stuck });
  });
});
