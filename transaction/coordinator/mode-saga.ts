/**
 * Saga: actions in order (or, with `concurrent`, each as soon as the steps it comes `after`
 * succeeded). An action that fails (ABORTED) turns the saga to `aborting`; so does the timeout
 * when actions are still unfinished. Aborting: compensate, in reverse order, every step whose
 * action was called at least once (a compensation for an action that never committed is an
 * empty compensation at the participant's barrier).
 */
import { callInOrder, describe, FINAL, type Mode, type RoundContext, type RoundResult } from "./round";

type Progress = { done: true } | { done: false; failed: boolean; error: string };

export const sagaMode: Mode = {
  async round(ctx: RoundContext): Promise<RoundResult> {
    if (ctx.global.status === "submitted") {
      const r: Progress = ctx.now() >= ctx.global.timeoutAt ? { done: false, failed: true, error: "timed out before every action succeeded" } : await forward(ctx);
      if (r.done) {
        await ctx.move(["submitted"], "succeed");
        return FINAL;
      }
      if (!r.failed) return { kind: "retry", error: r.error };
      if (!(await ctx.move(["submitted"], "aborting", r.error))) return FINAL;
    }
    // `call` keeps the rows current, so actions called in this round count too.
    const called = new Set(ctx.branches.filter((b) => b.op === "action" && (b.attempts > 0 || b.status !== "prepared")).map((b) => b.branchId));
    const compensations = ctx.branches.filter((b) => b.op === "compensate" && called.has(b.branchId)).reverse();
    const r = await callInOrder(ctx, compensations);
    if (!r.done) return { kind: "retry", error: r.error };
    await ctx.move(["aborting"], "failed");
    return FINAL;
  },
};

async function forward(ctx: RoundContext): Promise<Progress> {
  const actions = ctx.branches.filter((b) => b.op === "action");
  if (!ctx.global.settings.concurrent) return callInOrder(ctx, actions);
  const succeeded = new Set(actions.filter((b) => b.status === "succeed").map((b) => b.branchId));
  const pending = new Set(actions.filter((b) => !succeeded.has(b.branchId)));
  while (pending.size > 0) {
    const ready = [...pending].filter((b) => b.after.every((id) => succeeded.has(id)));
    if (ready.length === 0) return { done: false, failed: true, error: `steps ${[...pending].map((b) => b.branchId).join(", ")} wait on steps that never succeed` };
    const outcomes = await Promise.all(ready.map(async (b) => ({ b, o: await ctx.call(b) })));
    const bad = outcomes.filter((x) => x.o.verdict !== "success");
    if (bad.length > 0) {
      const worst = bad.find((x) => x.o.verdict === "failure") ?? bad[0]!;
      return { done: false, failed: worst.o.verdict === "failure", error: describe(worst.b, worst.o) };
    }
    for (const { b } of outcomes) {
      succeeded.add(b.branchId);
      pending.delete(b);
    }
  }
  return { done: true };
}
