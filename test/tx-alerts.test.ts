/**
 * Alerts: the webhook a real `protomesh tx-server` process POSTs to, the log line it prints
 * without --verbose, and `branch-failing` at `alertAfterAttempts` and each multiple.
 */
import * as http from "node:http";
import * as path from "node:path";
import { expect } from "chai";
import { createServer, RpcError, Status, type Server } from "../index";
import { createTxClient, createTxServer, participant, type TxAlert, type TxClient, type TxServer, type TxServerOptions } from "../transaction";
import { AccountDefinition, type AccountHandlers } from "../gen/examples/transfer/v1/transfer_protomesh";
import { captureLogger } from "./helpers/capture-logger";
import { startProc, type Proc } from "./helpers/tx-processes";

const CLI = path.join(__dirname, "..", "bin", "protomesh.js");

/** An Account service whose Credit and UndoCredit answer INTERNAL the first `failures` calls each (Infinity: always). */
async function ledger(failures: number): Promise<{ server: Server; calls: Record<string, number> }> {
  const calls: Record<string, number> = { credit: 0, undoCredit: 0 };
  const failing = (name: string) => async () => {
    if (++calls[name]! <= failures) throw new RpcError(Status.INTERNAL, `ledger offline (${name} call ${calls[name]})`);
    return { applied: true };
  };
  const server = createServer({ name: "alerts-ledger" });
  server.add(AccountDefinition, { credit: failing("credit"), undoCredit: failing("undoCredit") } as Partial<AccountHandlers> as AccountHandlers);
  await server.listen("127.0.0.1:0");
  return { server, calls };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("transaction alerts", function () {
  this.timeout(60_000);

  describe("protomesh tx-server (a real process, embedded store)", () => {
    let hook: http.Server;
    const posts: Array<{ method: string; contentType: string; body: TxAlert }> = [];
    let led: Awaited<ReturnType<typeof ledger>>;
    let proc: Proc | undefined;
    let tx: TxClient | undefined;

    before(async () => {
      hook = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d: Buffer) => (body += d.toString()));
        req.on("end", () => {
          posts.push({ method: req.method ?? "", contentType: req.headers["content-type"] ?? "", body: JSON.parse(body) as TxAlert });
          res.end();
        });
      });
      await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
      led = await ledger(Infinity);
      const { port } = hook.address() as { port: number };
      // As an operator starts it: no --verbose, no PROTOMESH_LOG_LEVEL, no etcd.
      proc = await startProc(
        [CLI, "tx-server", "--listen", "127.0.0.1:0", "--poll-ms", "50", "--retry-interval-ms", "50", "--max-retry-interval-ms", "100", "--alert-webhook", `http://127.0.0.1:${port}/alerts`],
        { PROTOMESH_LOG_LEVEL: undefined, ETCD_ENDPOINTS: undefined },
        /serving on/,
      );
      const address = /serving on (\S+)/.exec(proc.readyLine)![1]!;
      tx = createTxClient({ coordinator: address });
    });
    after(async () => {
      tx?.close();
      await proc?.kill("SIGTERM");
      await led?.server.shutdown();
      await new Promise((r) => hook.close(r));
    });

    it("POSTs each alert as JSON to --alert-webhook, with every field, and prints it on stderr without --verbose", async () => {
      const ledgerP = participant(AccountDefinition, led.server.address!);
      try {
        // Action and compensation both answer INTERNAL: 3 failed actions (alert), roll back at the
        // retry limit, 3 failed compensations (alert), give up (alert).
        const s = await tx!.saga({ retryLimit: 3 }).step(ledgerP, "credit", "undoCredit", { account: "bob", amount: 5 }).submit({ wait: false });
        const gaveUp = await until("the gave-up alert", () => posts.find((p) => p.body.kind === "gave-up" && p.body.gid === s.gid));
        const failing = posts.filter((p) => p.body.kind === "branch-failing" && p.body.gid === s.gid);
        expect(failing.map((p) => [p.body.op, p.body.attempts])).to.deep.equal([["action", 3], ["compensate", 3]]);
        for (const p of [...failing, gaveUp]) {
          expect(p.method).to.equal("POST");
          expect(p.contentType).to.equal("application/json");
        }
        const [action] = failing;
        expect(action!.body).to.deep.include({ kind: "branch-failing", gid: s.gid, mode: "saga", status: "submitted", branchId: "01", op: "action", method: "/examples.transfer.v1.Account/Credit", attempts: 3 });
        expect(action!.body.lastError).to.match(/ledger offline \(credit call 3\)/);
        expect(action!.body.at).to.be.a("number").within(Date.now() - 60_000, Date.now());
        expect(failing[1]!.body).to.deep.include({ status: "aborting", op: "compensate", method: "/examples.transfer.v1.Account/UndoCredit" });
        expect(gaveUp.body).to.deep.include({ kind: "gave-up", gid: s.gid, mode: "saga", status: "failed", attempts: 3 });
        expect(gaveUp.body.lastError).to.match(/^gave up after 3 rounds \(retry limit\): .*ledger offline/);
        expect(gaveUp.body.at).to.be.a("number");
        expect(Object.keys(action!.body).sort()).to.deep.equal(["at", "attempts", "branchId", "gid", "kind", "lastError", "method", "mode", "op", "status"]);

        // The same alerts on stderr, as warnings, with no --verbose; info lines stay quiet.
        const line = await proc!.errLine(new RegExp(`"kind":"gave-up","gid":"${s.gid}"`), 10_000);
        const alertLines = proc!.errLines.filter((l) => l.includes(s.gid) && l.includes('"transaction alert"')).map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(line).to.include("transaction alert");
        expect(alertLines.map((l) => [l.level, l.kind])).to.deep.equal([["warn", "branch-failing"], ["warn", "branch-failing"], ["warn", "gave-up"]]);
        expect(proc!.errLines.filter((l) => l.includes('"level":"info"') || l.includes('"level":"debug"'))).to.deep.equal([]);
      } finally {
        ledgerP.close();
      }
    });
  });

  /**
   * A ledger failing its first `failures` credits and a coordinator in this process recording its
   * alerts, for the enclosing describe.
   */
  function inProcess(failures: number, options: Pick<TxServerOptions, "alertAfterAttempts" | "defaults">) {
    const world = { alerts: [] as TxAlert[] } as { alerts: TxAlert[]; led: Awaited<ReturnType<typeof ledger>>; co: TxServer; tx: TxClient };
    before(async () => {
      world.led = await ledger(failures);
      world.co = await createTxServer({ logger: captureLogger(), pollIntervalMs: 50, onAlert: (a) => void world.alerts.push(a), ...options });
      world.tx = createTxClient({ coordinator: `127.0.0.1:${await world.co.listen("127.0.0.1:0")}` });
    });
    after(async () => {
      world.tx?.close();
      await world.co?.shutdown();
      await world.led?.server.shutdown();
    });
    return world;
  }

  describe("branch-failing at alertAfterAttempts (in process)", () => {
    const world = inProcess(5, { alertAfterAttempts: 2, defaults: { retryIntervalMs: 50, maxRetryIntervalMs: 100 } });

    it("alerts when a branch's failed calls reach alertAfterAttempts and at each multiple, not in between", async () => {
      const { led, tx, alerts } = world;
      const ledgerP = participant(AccountDefinition, led.server.address!);
      try {
        // Credit fails 5 times, then succeeds: alerts at the 2nd and 4th failure, none at the 1st, 3rd or 5th.
        const s = await tx.saga().step(ledgerP, "credit", "undoCredit", { account: "bob", amount: 5 }).submit({ wait: false });
        await until("the saga to succeed", () => (led.calls.credit! >= 6 ? true : undefined));
        const t = await until("the saga to be recorded as succeeded", async () => {
          const got = await tx.get(s.gid);
          return got.status === "succeed" ? got : undefined;
        });
        expect(t.branches.find((b) => b.op === "action")!.attempts).to.equal(6);
        const mine = alerts.filter((a) => a.gid === s.gid);
        expect(mine.map((a) => [a.kind, a.op, a.attempts])).to.deep.equal([["branch-failing", "action", 2], ["branch-failing", "action", 4]]);
        expect(mine[1]).to.deep.include({ mode: "saga", status: "submitted", branchId: "01", method: "/examples.transfer.v1.Account/Credit" });
        expect(mine[1]!.lastError).to.match(/ledger offline \(credit call 4\)/);
      } finally {
        ledgerP.close();
      }
    });
  });
  describe("gave-up for a notification (in process)", () => {
    const world = inProcess(Infinity, { alertAfterAttempts: 1000 });

    it("alerts gave-up when a notification runs out of its schedule, with its kind, gid, mode and last error", async () => {
      const { led, tx, alerts } = world;
      const ledgerP = participant(AccountDefinition, led.server.address!);
      try {
        // One attempt, then one per wait: three attempts, then the schedule is over.
        const n = await tx.notify(ledgerP, "credit", { account: "bob", amount: 1 }, { scheduleMs: [50, 50] });
        const alert = await until("the gave-up alert", () => alerts.find((a) => a.gid === n.gid));
        expect(alert).to.deep.include({ kind: "gave-up", gid: n.gid, mode: "notify", status: "failed", attempts: 3 });
        expect(alert.lastError).to.match(/^gave up after 3 attempts: branch 01 notify \/examples\.transfer\.v1\.Account\/Credit: INTERNAL ledger offline/);
        expect(alert.at).to.be.a("number").within(Date.now() - 60_000, Date.now());
        const t = await tx.get(n.gid);
        expect(t.status).to.equal("failed");
        expect(t.lastError).to.equal(alert.lastError);
        expect(alerts.filter((a) => a.gid === n.gid)).to.have.length(1);
      } finally {
        ledgerP.close();
      }
    });

    it("alerts gave-up when a notification reaches maxAgeMs, the reason saying its age", async () => {
      const { led, tx, alerts } = world;
      const ledgerP = participant(AccountDefinition, led.server.address!);
      try {
        const n = await tx.notify(ledgerP, "credit", { account: "bob", amount: 2 }, { scheduleMs: Array.from({ length: 50 }, () => 50), maxAgeMs: 500 });
        const alert = await until("the gave-up alert", () => alerts.find((a) => a.gid === n.gid));
        expect(alert).to.deep.include({ kind: "gave-up", gid: n.gid, mode: "notify", status: "failed" });
        expect(alert.attempts).to.be.within(1, 50);
        expect(alert.lastError).to.match(/^gave up after \d+ attempts: the notification reached its maximum age \(maxAgeMs 500\); /);
        const t = await tx.get(n.gid);
        expect(t.status).to.equal("failed");
        expect(t.lastError).to.equal(alert.lastError);
        expect(alerts.filter((a) => a.gid === n.gid)).to.have.length(1);
      } finally {
        ledgerP.close();
      }
    });

    it("sends no gave-up alert for a notification its receiver refused for good (ABORTED)", async () => {
      const { tx, alerts } = world;
      const refusing = createServer({ name: "alerts-refusing" });
      refusing.add(AccountDefinition, { credit: async () => { throw new RpcError(Status.ABORTED, "no such account"); } } as Partial<AccountHandlers> as AccountHandlers);
      await refusing.listen("127.0.0.1:0");
      const p = participant(AccountDefinition, refusing.address!);
      try {
        const n = await tx.notify(p, "credit", { account: "nobody", amount: 3 }, { scheduleMs: [50], wait: true });
        expect(n.status).to.equal("failed");
        await new Promise((r) => setTimeout(r, 200));
        expect(alerts.filter((a) => a.gid === n.gid)).to.deep.equal([]);
      } finally {
        p.close();
        await refusing.shutdown();
      }
    });
  });
});
