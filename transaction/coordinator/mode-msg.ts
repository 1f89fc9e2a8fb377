/**
 * Reliable message. Prepared: the producer's local transaction is (or was) running; past the
 * timeout the coordinator asks the producer (QueryPrepared, answered from the barrier's row
 * lock): committed → submitted, rolled back → failed, no answer → ask again later.
 * Submitted: deliver to each subscriber in order until each acknowledges. A subscriber cannot
 * refuse a committed message: every non-OK answer is retried (with the capped backoff).
 */
import { Status } from "../../runtime/errors";
import { describe, FINAL, type Mode, type RoundContext, type RoundResult } from "./round";

export const msgMode: Mode = {
  async round(ctx: RoundContext): Promise<RoundResult> {
    if (ctx.global.status === "prepared") {
      if (ctx.now() < ctx.global.timeoutAt) return { kind: "wait", at: ctx.global.timeoutAt, error: "" };
      const q = await ctx.queryPrepared();
      if (q.code === Status.ABORTED) {
        await ctx.move(["prepared"], "failed", "the producer's local transaction rolled back (query-back)");
        return FINAL;
      }
      if (q.verdict !== "success") return { kind: "retry", error: `query-back to ${ctx.global.queryTarget}: ${q.message || `code ${q.code}`}` };
      if (!(await ctx.move(["prepared"], "submitted", ""))) return FINAL;
    }
    if (ctx.global.status === "aborting") {
      await ctx.move(["aborting"], "failed");
      return FINAL;
    }
    for (const b of ctx.branches) {
      if (b.status === "succeed") continue;
      const o = await ctx.call(b);
      if (o.verdict !== "success") return { kind: "retry", error: describe(b, o) };
    }
    await ctx.move(["submitted", "prepared"], "succeed");
    return FINAL;
  },
};
