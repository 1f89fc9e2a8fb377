/**
 * Best-effort notification: one call to the receiver per round, on the transaction's
 * `scheduleMs` (1 s, 5 s, 30 s, 1 min, 5 min, 30 min, 1 h, 2 h, 6 h by default). OK ends it
 * `succeed`; ABORTED (the receiver refuses it for good) or the end of the schedule ends it
 * `failed`. With `maxAgeMs`, no attempt is made once the notification is that old: it ends
 * `failed` after the last attempt that fits, or without calling when a round comes late (after
 * an outage of the coordinators, say). Every attempt is recorded. Running out of schedule or
 * age is giving up: the `gave-up` alert goes out, as for a transaction at its retry limit.
 */
import type { BranchRow, GlobalRow } from "../store/types";
import { describe, FINAL, type Mode, type RoundContext, type RoundResult } from "./round";

export const notifyMode: Mode = {
  async round(ctx: RoundContext): Promise<RoundResult> {
    const b = ctx.branches.find((x) => x.op === "notify");
    if (!b) {
      await ctx.move(["submitted", "prepared", "aborting"], "failed", "no receiver");
      return FINAL;
    }
    const expiresAt = expiryOf(ctx.global);
    if (ctx.now() >= expiresAt) return giveUp(ctx, b, tooOld(ctx.global, b, b.lastError ? `last answer: ${b.lastError}` : "never called"));
    const o = await ctx.call(b);
    if (o.verdict === "success") {
      await ctx.move(["submitted"], "succeed", "");
      return FINAL;
    }
    const error = describe(b, o);
    const schedule = ctx.global.settings.scheduleMs;
    const waitMs = schedule[ctx.global.rounds - 1];
    if (o.verdict === "failure") {
      // The receiver refused it for good: it did not give up.
      await ctx.move(["submitted"], "failed", error);
      return FINAL;
    }
    if (waitMs === undefined) return giveUp(ctx, b, `gave up after ${ctx.global.rounds} attempts: ${error}`);
    const at = ctx.now() + waitMs;
    // The next attempt would come too late: end it now rather than wait only to fail.
    if (at >= expiresAt) return giveUp(ctx, b, tooOld(ctx.global, b, error));
    return { kind: "wait", at, error };
  },
};

/** Ends the notification `failed` because it ran out of schedule or age; the coordinator then sends the `gave-up` alert. */
async function giveUp(ctx: RoundContext, b: BranchRow, error: string): Promise<RoundResult> {
  if (!(await ctx.move(["submitted"], "failed", error))) return FINAL;
  return { kind: "final", gaveUp: { attempts: b.attempts, error } };
}

/** When a notification stops being attempted (`Infinity` without an age limit). */
export function expiryOf(g: Pick<GlobalRow, "createdAt" | "settings">): number {
  const maxAge = g.settings.maxAgeMs;
  return maxAge > 0 ? g.createdAt + maxAge : Infinity;
}

function tooOld(g: GlobalRow, b: BranchRow, last: string): string {
  return `gave up after ${b.attempts} attempts: the notification reached its maximum age (maxAgeMs ${g.settings.maxAgeMs}); ${last}`;
}
