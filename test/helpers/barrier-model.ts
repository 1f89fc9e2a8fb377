/**
 * A property over interleavings, shared by every barrier adapter's spec: the branch calls of one
 * branch arrive in any order, duplicated, concurrently, some failing after their SQL (rolled
 * back, then retried) — and the business effect must match the global outcome exactly once.
 */
import fc from "fast-check";
import { expect } from "chai";
import { RpcError, Status } from "../../runtime/errors";
import type { Barrier } from "../../transaction/barrier/barrier";
import type { BarrierOp } from "../../transaction/barrier/call-info";

/** The account store of the model: an `exec` that runs one UPDATE inside the barrier's transaction. */
export interface ModelDb<Tx> {
  barrier: Barrier<Tx>;
  /** Creates the account `id` with 100 available. */
  open(id: string): Promise<void>;
  /** Runs an UPDATE with `$1` = id (`?` for SQLite is the adapter's business), returns rows changed. */
  exec(tx: Tx, sql: string, id: string): Promise<number>;
  read(id: string): Promise<{ available: number; frozen: number }>;
}

type Mode = "tcc" | "saga";
const SQL: Record<string, string> = {
  try: "UPDATE account SET available = available - 10, frozen = frozen + 10 WHERE id = $1 AND available >= 10",
  confirm: "UPDATE account SET frozen = frozen - 10 WHERE id = $1",
  cancel: "UPDATE account SET available = available + 10, frozen = frozen - 10 WHERE id = $1",
  action: "UPDATE account SET available = available - 10 WHERE id = $1 AND available >= 10",
  compensate: "UPDATE account SET available = available + 10 WHERE id = $1",
};

interface Scenario {
  mode: Mode;
  commit: boolean;
  /** The forward op's business refuses (ABORTED): only with an abort outcome. */
  forwardRefused: boolean;
  events: Array<{ op: BarrierOp; transient: boolean; group: number }>;
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    mode: fc.constantFrom<Mode>("tcc", "saga"),
    commit: fc.boolean(),
    forwardRefused: fc.boolean(),
    forwards: fc.integer({ min: 0, max: 3 }),
    backs: fc.integer({ min: 1, max: 3 }),
    seed: fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.boolean(), fc.integer({ min: 0, max: 3 })), { minLength: 8, maxLength: 8 }),
  })
  .map(({ mode, commit, forwardRefused, forwards, backs, seed }) => {
    const fwd: BarrierOp = mode === "tcc" ? "try" : "action";
    const back: BarrierOp = commit ? (mode === "tcc" ? "confirm" : "action") : mode === "tcc" ? "cancel" : "compensate";
    let ops: BarrierOp[];
    if (commit) {
      // Committing needs the forward op to have succeeded first; late duplicates may follow anything.
      const rest: BarrierOp[] = [...Array(forwards).fill(fwd), ...(mode === "tcc" ? Array(backs).fill(back) : [])];
      ops = [fwd, ...shuffle(rest, seed.map((s) => s[0]))];
    } else {
      ops = shuffle([...Array(forwards).fill(fwd), ...Array(backs).fill(back)], seed.map((s) => s[0]));
    }
    const events = ops.map((op, i) => {
      const [, transient, group] = seed[i % seed.length]!;
      // The first forward call of a committing transaction succeeded (that is why it commits).
      return { op, transient: transient && !(commit && i === 0), group: commit && i === 0 ? -1 : group };
    });
    return { mode, commit, forwardRefused: forwardRefused && !commit, events };
  });

function shuffle<T>(xs: T[], keys: number[]): T[] {
  return xs.map((x, i) => ({ x, k: keys[i % keys.length]! * 31 + i })).sort((a, b) => a.k - b.k).map((e) => e.x);
}

/** Runs the property `runs` times against `db`. */
export async function checkBarrierInterleavings<Tx>(db: ModelDb<Tx>, runs: number): Promise<void> {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const gid = `g${process.pid}-${Date.now().toString(36)}-${n++}`;
      await db.open(gid);
      const call = async (op: BarrierOp, transient: boolean) => {
        try {
          await db.barrier.run({ mode: s.mode, gid, branchId: "01", op }, async (tx) => {
            if ((op === "try" || op === "action") && s.forwardRefused) throw new RpcError(Status.ABORTED, "refused");
            const changed = await db.exec(tx, SQL[op]!, gid);
            if (changed !== 1) throw new Error(`${op} changed ${changed} rows`);
            if (transient) throw new RpcError(Status.UNAVAILABLE, "lost after the SQL ran");
          });
        } catch (err) {
          const code = RpcError.from(err).code;
          // Expected failures: the refused forward op, injected transient losses.
          if (code === Status.ABORTED && s.forwardRefused) return;
          if (code === Status.UNAVAILABLE && transient) return;
          throw err;
        }
      };
      const groups = [...new Set(s.events.map((e) => e.group))].sort((a, b) => a - b);
      for (const g of groups) await Promise.all(s.events.filter((e) => e.group === g).map((e) => call(e.op, e.transient)));
      // The coordinator retries the final op until it succeeds: one last clean call.
      const finalOp: BarrierOp = s.commit ? (s.mode === "tcc" ? "confirm" : "action") : s.mode === "tcc" ? "cancel" : "compensate";
      await call(finalOp, false);
      const acc = await db.read(gid);
      if (s.commit) expect(acc, JSON.stringify(s)).to.deep.equal({ available: 90, frozen: 0 });
      else expect(acc, JSON.stringify(s)).to.deep.equal({ available: 100, frozen: 0 });
    }),
    { numRuns: runs },
  );
}
