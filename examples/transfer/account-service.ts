/**
 * One bank: the Account service over its own Postgres database (a server through `pg`, or
 * PGlite in the process). Every branch method runs its SQL inside the barrier's local
 * transaction, so duplicates, a Cancel before its Try and a Try after its Cancel do nothing.
 */
import { RpcError, Status, type CallContext } from "protomesh";
import type { Barrier } from "protomesh/transaction";
import type { AccountHandlers } from "../../gen/examples/transfer/v1/transfer_protomesh";
import type { Leg } from "../../gen/examples/transfer/v1/transfer";

/** What both `pg`'s PoolClient and PGlite's transaction offer. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount?: number | null; affectedRows?: number }>;
}

export const ACCOUNT_SCHEMA = `CREATE TABLE IF NOT EXISTS account (
  id        text PRIMARY KEY,
  available bigint NOT NULL CHECK (available >= 0),
  frozen    bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0),
  incoming  bigint NOT NULL DEFAULT 0 CHECK (incoming >= 0)
)`;

/**
 * The bank's statement: one line per transfer and account, written by the local transaction
 * that sends the transfer's reliable message (main.ts), so the line and the message commit
 * together. A second message for the same transfer fails on the primary key.
 */
export const STATEMENT_SCHEMA = `CREATE TABLE IF NOT EXISTS statement (
  transfer text   NOT NULL,
  account  text   NOT NULL,
  amount   bigint NOT NULL,
  memo     text   NOT NULL,
  PRIMARY KEY (transfer, account)
)`;

async function exec(db: Queryable, sql: string, params: unknown[]): Promise<number> {
  const r = await db.query(sql, params);
  return r.rowCount ?? r.affectedRows ?? 0;
}

function checkLeg(leg: Leg): void {
  if (!leg.account) throw new RpcError(Status.INVALID_ARGUMENT, "account is required");
  if (!(leg.amount > 0)) throw new RpcError(Status.INVALID_ARGUMENT, "amount must be positive");
}

/** Account handlers on `barrier`; `read` runs a plain query for Balance. */
export function accountHandlers<Tx extends Queryable>(barrier: Barrier<Tx>, read: Queryable): AccountHandlers {
  const guarded = (sql: string, onZero?: string) => async (leg: Leg, ctx: CallContext) => {
    checkLeg(leg);
    const r = await barrier.run(ctx, async (tx) => {
      const n = await exec(tx, sql, [leg.account, leg.amount]);
      // ABORTED from a Try or an action is "failed: roll the transaction back".
      if (n === 0) throw new RpcError(onZero ? Status.ABORTED : Status.NOT_FOUND, onZero ?? `account ${leg.account} not found`);
    });
    return { applied: r.ran };
  };
  return {
    tryDebit: guarded(`UPDATE account SET available = available - $2, frozen = frozen + $2 WHERE id = $1 AND available >= $2`, "insufficient funds"),
    confirmDebit: guarded(`UPDATE account SET frozen = frozen - $2 WHERE id = $1`),
    cancelDebit: guarded(`UPDATE account SET available = available + $2, frozen = frozen - $2 WHERE id = $1`),
    tryCredit: guarded(`UPDATE account SET incoming = incoming + $2 WHERE id = $1`, "no such account"),
    confirmCredit: guarded(`UPDATE account SET incoming = incoming - $2, available = available + $2 WHERE id = $1`),
    cancelCredit: guarded(`UPDATE account SET incoming = incoming - $2 WHERE id = $1`),
    debit: guarded(`UPDATE account SET available = available - $2 WHERE id = $1 AND available >= $2`, "insufficient funds"),
    undoDebit: guarded(`UPDATE account SET available = available + $2 WHERE id = $1`),
    credit: guarded(`UPDATE account SET available = available + $2 WHERE id = $1`, "no such account"),
    undoCredit: guarded(`UPDATE account SET available = available - $2 WHERE id = $1`),
    async balance(req) {
      const r = await read.query(`SELECT available, frozen, incoming FROM account WHERE id = $1`, [req.account]);
      const row = r.rows[0] as { available: string | number; frozen: string | number; incoming: string | number } | undefined;
      if (!row) throw new RpcError(Status.NOT_FOUND, `account ${req.account} not found`);
      return { available: Number(row.available), frozen: Number(row.frozen), incoming: Number(row.incoming) };
    },
  };
}
