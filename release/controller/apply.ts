/**
 * Carrying a transition out: the rule first (traffic moves at once), then the state, both
 * conditional. Shared by the controller and the CLI's commands.
 */
import type { TrafficRule } from "../../runtime/balancing/traffic-rule";
import { applyCommand, ruleForState, type Command, type Transition } from "../machine";
import type { ReleaseState } from "../state";
import { RuleConflictError, type RuleStore } from "./rule-store";
import { StateConflictError, type ReleaseStateStore, type StoredRelease } from "./state-store";

/** Writes `rule` over whatever version is in force, retrying a few times on a concurrent write. */
export async function writeRule(rules: RuleStore, rule: TrafficRule, comment: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const current = await rules.current();
    try {
      return (await rules.write(rule, { expectVersion: current?.version ?? 0, comment })).version;
    } catch (err) {
      if (!(err instanceof RuleConflictError) || attempt >= 4) throw err;
    }
  }
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
