/**
 * TCC: the caller ran every Try while the transaction was `prepared`. Submitted: Confirm every
 * branch in registration order. Aborting (the caller aborted, or it timed out while prepared):
 * Cancel every branch in reverse order, including branches whose Try may never have arrived —
 * the barrier turns those into empty compensations. Confirm and Cancel are retried until they
 * succeed; a participant may not refuse them.
 */
import { callInOrder, FINAL, type Mode, type RoundContext, type RoundResult } from "./round";

export const tccMode: Mode = {
  async round(ctx: RoundContext): Promise<RoundResult> {
    let status = ctx.global.status;
    if (status === "prepared") {
      if (ctx.now() < ctx.global.timeoutAt) return { kind: "wait", at: ctx.global.timeoutAt, error: "" };
      if (!(await ctx.move(["prepared"], "aborting", "timed out before the caller submitted"))) return FINAL;
      status = "aborting";
    }
    if (status === "submitted") {
      const r = await callInOrder(ctx, ctx.branches.filter((b) => b.op === "confirm"));
      if (!r.done) return { kind: "retry", error: r.error };
      await ctx.move(["submitted"], "succeed");
      return FINAL;
    }
    const cancels = ctx.branches.filter((b) => b.op === "cancel").reverse();
    const r = await callInOrder(ctx, cancels);
    if (!r.done) return { kind: "retry", error: r.error };
    await ctx.move(["aborting"], "failed");
    return FINAL;
  },
};
