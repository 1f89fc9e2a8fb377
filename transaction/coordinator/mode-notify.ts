/**
 * Best-effort notification: one call to the receiver per round, on the transaction's
 * `scheduleMs` (1 s, 5 s, 30 s, 1 min, 5 min, 30 min, 1 h, 2 h, 6 h by default). OK ends it
 * `succeed`; ABORTED (the receiver refuses it for good) or the end of the schedule ends it
 * `failed`. Every attempt is recorded.
 */
import { describe, FINAL, type Mode, type RoundContext, type RoundResult } from "./round";

export const notifyMode: Mode = {
  async round(ctx: RoundContext): Promise<RoundResult> {
    const b = ctx.branches.find((x) => x.op === "notify");
    if (!b) {
      await ctx.move(["submitted", "prepared", "aborting"], "failed", "no receiver");
      return FINAL;
    }
    const o = await ctx.call(b);
    if (o.verdict === "success") {
      await ctx.move(["submitted"], "succeed", "");
      return FINAL;
    }
    const error = describe(b, o);
    const schedule = ctx.global.settings.scheduleMs;
    const waitMs = schedule[ctx.global.rounds - 1];
    if (o.verdict === "failure" || waitMs === undefined) {
      await ctx.move(["submitted"], "failed", waitMs === undefined ? `gave up after ${ctx.global.rounds} attempts: ${error}` : error);
      return FINAL;
    }
    return { kind: "wait", at: ctx.now() + waitMs, error };
  },
};
