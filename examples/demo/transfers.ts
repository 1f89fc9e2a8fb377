/**
 * The demo's transactions, driven by the coordinator (`protomesh tx-server`) against the two
 * banks: transfers that succeed, one that fails and is rolled back, and one TCC whose caller
 * "went away" after Prepare, left for the coordinator to time out. They fill the console's
 * Transactions page; the last one shows up in the stuck view after a minute.
 */
import { createTxClient, participant } from "protomesh/transaction";
import { AccountDefinition } from "../../gen/examples/transfer/v1/transfer_protomesh";

export interface TransferRow {
  readonly what: string;
  readonly gid: string;
  readonly status: string;
}

/** Runs the transfers; returns one row per transaction and the balances after them. */
export async function runTransfers(): Promise<{ rows: TransferRow[]; balances: string }> {
  const tx = createTxClient({ defaults: { retryIntervalMs: 1000 } });
  const a = participant(AccountDefinition, "etcd:///bank-a");
  const b = participant(AccountDefinition, "etcd:///bank-b");
  const rows: TransferRow[] = [];
  try {
    const t1 = await tx.tcc(async (t) => {
      await t.call(a, "debit", { account: "alice", amount: 1500 });
      await t.call(b, "credit", { account: "bob", amount: 1500 });
    });
    rows.push({ what: "TCC: alice pays bob 15.00", gid: t1.outcome.gid, status: t1.outcome.status });
    const s1 = await tx.saga().step(a, "debit", "undoDebit", { account: "alice", amount: 700 }).step(b, "credit", "undoCredit", { account: "bob", amount: 700 }).submit();
    rows.push({ what: "saga: alice pays bob 7.00", gid: s1.gid, status: s1.status });
    // Bob is credited first, then alice cannot pay: the saga compensates the credit and fails.
    const s2 = await tx.saga().step(b, "credit", "undoCredit", { account: "bob", amount: 5_000_000 }).step(a, "debit", "undoDebit", { account: "alice", amount: 5_000_000 }).submit();
    rows.push({ what: "saga: alice pays bob 50,000.00 (too much)", gid: s2.gid, status: `${s2.status}: ${s2.lastError.split(": ").pop()}, bob's credit undone` });
    // Prepared, then nothing: the caller never submits. The coordinator aborts it after its timeout.
    const open = await tx.coordinator.prepare({ gid: `demo-left-open-${Date.now().toString(36)}`, mode: "tcc", options: { timeoutMs: 15 * 60_000 } });
    rows.push({ what: "TCC prepared, caller gone (aborted after 15 min)", gid: open.gid, status: "prepared" });
    const [x, y] = await Promise.all([a.client().balance({ account: "alice" }), b.client().balance({ account: "bob" })]);
    return { rows, balances: `alice ${(x.available / 100).toFixed(2)}, bob ${(y.available / 100).toFixed(2)}` };
  } finally {
    tx.close();
    a.close();
    b.close();
  }
}
