/**
 * Carrying a transition out: the rule first (traffic moves at once), then the state, both
 * conditional. Shared by the controller and the CLI's commands.
 */
import type { TrafficRule } from "../../runtime/balancing/traffic-rule";
import type { TrafficStore } from "../../traffic/store";
import { MAX_COMMENT_LENGTH } from "../../config/records";
import { applyCommand, ruleForState, type Command, type Transition } from "../machine";
import type { ReleaseState } from "../state";
import { StateConflictError, type ReleaseStateStore, type StoredRelease } from "./state-store";

/**
 * What a release needs of a service's rule store: the traffic store's reads and writes (each
 * write a new version in the rule's history, so `protomesh traffic history` shows every step).
 */
export type RuleStore = Pick<TrafficStore, "current" | "write">;

/** Writes `rule` as the next version over whatever is in force (the store retries concurrent writes itself). */
export async function writeRule(rules: RuleStore, rule: TrafficRule, comment: string): Promise<number> {
  return (await rules.write(rule, { comment: comment.slice(0, MAX_COMMENT_LENGTH) })).version;
}

/**
 * Applies `transition` read at `modRevision`. On a state conflict after a rule write, the stored
 * state won the race: its rule is written back so traffic matches what the state says.
 */
export async function commit(store: ReleaseStateStore, rules: RuleStore, transition: Transition, modRevision: string, owner?: string): Promise<StoredRelease> {
  const { state, rule } = transition;
  if (rule) await writeRule(rules, rule, `release ${state.id}: ${state.message}`);
  try {
    return await store.put(state, modRevision, owner);
  } catch (err) {
    if (err instanceof StateConflictError && rule) {
      const winner = await store.get(state.spec.service);
      if (winner) await writeRule(rules, ruleForState(winner.state), `release ${winner.state.id}: ${winner.state.message}`);
    }
    throw err;
  }
}

/** Runs a human's command against the stored release, re-reading on conflicts. */
export async function runCommand(store: ReleaseStateStore, rules: RuleStore, service: string, command: Command, now: () => number = Date.now): Promise<ReleaseState> {
  for (let attempt = 0; ; attempt++) {
    const stored = await store.get(service);
    if (!stored) throw new Error(`${service} has no release`);
    const transition = applyCommand(stored.state, command, now());
    try {
      return (await commit(store, rules, transition, stored.modRevision)).state;
    } catch (err) {
      if (!(err instanceof StateConflictError) || attempt >= 9) throw err;
    }
  }
}
