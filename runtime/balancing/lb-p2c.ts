/**
 * `p2c`: power of two choices over peak-EWMA load (`latency × (pending + 1)`), inside the
 * endpoints a traffic rule allows. Two READY endpoints are drawn at random and the cheaper one
 * takes the call; a hung endpoint's open calls age (its cost is at least their mean age), so it
 * stops winning within milliseconds, and a slow one loses on latency.
 *
 * - New endpoints start at the mean estimate of their peers (the default RTT when there are
 *   none): neither favoured, as go-zero's lag-0 start does, nor shut out by a fixed seed far above
 *   the fleet's real latency. An endpoint that comes back READY on a new connection starts over
 *   the same way: the old connection's history (a freeze, say) says nothing about the new one.
 * - A loser that has not been picked for `forceAfterMs` and has nothing pending is picked anyway,
 *   so its estimate is refreshed (go-zero and Kratos do the same); one with calls pending is
 *   being measured already and is not forced.
 * - A failed call (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN,
 *   DATA_LOSS) counts as at least `failurePenaltyMs` of latency; an application's own errors
 *   (NOT_FOUND, INVALID_ARGUMENT…) count as ordinary latency.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { EndpointBalancer, failResult, QUEUE_RESULT, type PickerEntry } from "./endpoint-balancer";
import { PEAK_EWMA_DEFAULTS, PeakEwma, type PeakEwmaSettings } from "./peak-ewma";
import type { TrafficSelector } from "./traffic-selector";
import { TrackedPick, type CallObserver } from "./tracked-pick";

/** Name of the policy in a service config's `loadBalancingConfig`. */
export const P2C_POLICY = "p2c";

/** Settings of `p2c`, validated. */
export interface P2cSettings extends PeakEwmaSettings {
  /** A loser idle this long (ms) is picked anyway to refresh its estimate (default 1,000). */
  readonly forceAfterMs: number;
}

export const P2C_DEFAULTS: P2cSettings = { ...PEAK_EWMA_DEFAULTS, forceAfterMs: 1000 };

/** Validates `{ decayMs?, defaultRttMs?, failurePenaltyMs?, forceAfterMs? }`; errors start with `where`. */
export function parseP2cSettings(raw: unknown, where = P2C_POLICY): P2cSettings {
  if (raw === undefined || raw === null) return P2C_DEFAULTS;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new TypeError(`${where}: expected an object, got ${Array.isArray(raw) ? "an array" : typeof raw}`);
  const obj = raw as Record<string, unknown>;
  const settings: Record<string, number> = { ...P2C_DEFAULTS };
  for (const [key, value] of Object.entries(obj)) {
    if (!(key in P2C_DEFAULTS)) throw new TypeError(`${where}: unknown option "${key}" (expected one of ${Object.keys(P2C_DEFAULTS).join(", ")})`);
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new RangeError(`${where}.${key} must be a positive number of milliseconds, got ${JSON.stringify(value)}`);
    settings[key] = value;
  }
  return settings as unknown as P2cSettings;
}

export class P2cLoadBalancingConfig implements experimental.TypedLoadBalancingConfig {
  constructor(readonly settings: P2cSettings) {}

  getLoadBalancerName(): string {
    return P2C_POLICY;
  }

  toJsonObject(): object {
    return { [P2C_POLICY]: { ...this.settings } };
  }

  static createFromJson(obj: unknown): P2cLoadBalancingConfig {
    return new P2cLoadBalancingConfig(parseP2cSettings(obj));
  }
}

/** Per-endpoint state that outlives pickers. */
export interface P2cState {
  readonly ewma: PeakEwma;
  /** Feeds the endpoint's picked calls into `ewma` (pending, open-call ages, observed latencies). */
  readonly observer: CallObserver;
  wasReady: boolean;
}

const { PickResultType } = grpc.experimental;

/** Codes that say something about the endpoint rather than the request. */
const ENDPOINT_FAILURES: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.DATA_LOSS,
]);

/** An endpoint's state around `ewma`: one observer per endpoint, nothing allocated per call. */
export function p2cState(ewma: PeakEwma): P2cState {
  const observer: CallObserver = {
    claim: () => void ewma.pending++,
    release: () => void ewma.pending--,
    opened: (at) => ewma.callOpened(at),
    closed: (code, pickedAt, openedAt, now) => {
      if (openedAt >= 0) ewma.callClosed(openedAt);
      // A call the client cancelled says nothing about the endpoint, nor does an application's own error (NOT_FOUND…).
      if (code !== grpc.status.CANCELLED) ewma.observe(now - pickedAt, ENDPOINT_FAILURES.has(code), now);
    },
  };
  return { ewma, observer, wasReady: false };
}

export class P2cPicker implements experimental.Picker {
  private readonly ready: number[] = [];

  constructor(
    private readonly entries: readonly PickerEntry<P2cState>[],
    private readonly selector: TrafficSelector | undefined,
    private readonly settings: P2cSettings,
    private readonly random: () => number = Math.random,
  ) {
    entries.forEach((e, i) => e.picker !== null && this.ready.push(i));
  }

  pick(pickArgs: experimental.PickArgs): experimental.PickResult {
    let indices: readonly number[] = this.ready;
    if (this.selector !== undefined) {
      const selection = this.selector.select(pickArgs);
      if (selection.kind === "queue") return QUEUE_RESULT;
      if (selection.kind === "fail") return failResult(selection.message);
      indices = selection.group.indices;
    }
    const now = performance.now();
    const chosen = this.entries[this.choose(indices, now)];
    const state = chosen.member.state;
    state.ewma.lastPicked = now;
    const result = chosen.picker!.pick(pickArgs);
    if (result.pickResultType !== PickResultType.COMPLETE) return result;
    return new TrackedPick(result, state.observer, now);
  }

  private choose(indices: readonly number[], now: number): number {
    const n = indices.length;
    if (n === 1) return indices[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = indices[i];
    const b = indices[j];
    const ea = this.entries[a].member.state.ewma;
    const eb = this.entries[b].member.state.ewma;
    const [winner, loser, loserEwma] = ea.load(now) <= eb.load(now) ? [a, b, eb] : [b, a, ea];
    if (loserEwma.pending === 0 && now - loserEwma.lastPicked > this.settings.forceAfterMs) return loser;
    return winner;
  }
}

export class P2cLoadBalancer extends EndpointBalancer<P2cLoadBalancingConfig, P2cState> {
  getTypeName(): string {
    return P2C_POLICY;
  }

  protected isConfig(config: experimental.TypedLoadBalancingConfig): config is P2cLoadBalancingConfig {
    return config instanceof P2cLoadBalancingConfig;
  }

  protected createState(): P2cState {
    const settings = this.config?.settings ?? P2C_DEFAULTS;
    const now = performance.now();
    return p2cState(new PeakEwma(settings, now, this.peerSeed(now, settings)));
  }

  protected buildPicker(entries: readonly PickerEntry<P2cState>[], selector: TrafficSelector | undefined, config: P2cLoadBalancingConfig): experimental.Picker {
    const now = performance.now();
    for (const entry of entries) {
      const state = entry.member.state;
      if (entry.ready && !state.wasReady) state.ewma.reset(this.peerSeed(now, config.settings, entry.member.key), now);
      state.wasReady = entry.ready;
    }
    return new P2cPicker(entries, selector, config.settings);
  }

  /** The mean latency estimate of the other READY members, or the default RTT. */
  private peerSeed(now: number, settings: P2cSettings, except?: string): number {
    let sum = 0;
    let n = 0;
    for (const member of this.members.values()) {
      if (member.key === except || !member.state.wasReady) continue;
      sum += member.state.ewma.latency(now);
      n++;
    }
    return n === 0 ? settings.defaultRttMs : sum / n;
  }
}

/** Registers `p2c` with grpc-js; repeating the call is harmless. */
export function setupP2c(): void {
  grpc.experimental.registerLoadBalancerType(P2C_POLICY, P2cLoadBalancer, P2cLoadBalancingConfig);
}
