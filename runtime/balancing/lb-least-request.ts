/**
 * `least_request`: Envoy's LEAST_REQUEST, written for grpc-js (Envoy's documentation read, not its
 * code copied): `choiceCount` READY endpoints (default 2) are drawn at random among those a
 * traffic rule allows, and the one with the fewest calls outstanding from this client takes the
 * call. With unequal registry weights the comparison is Envoy's dynamic weight,
 * `weight / (outstanding + 1) ^ activeRequestBias`, highest wins.
 *
 * Unlike p2c it keeps no latency estimate: a slow endpoint loses only as far as its calls pile
 * up, and a hung one once its stuck calls outnumber its peers' (which, at a steady load, is
 * within a few picks). An endpoint that fails fast has few calls outstanding and keeps winning:
 * pair it with `outlierDetection` where that can happen.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { EndpointBalancer, failResult, QUEUE_RESULT, type PickerEntry } from "./endpoint-balancer";
import type { TrafficSelector } from "./traffic-selector";
import { TrackedPick, type CallObserver } from "./tracked-pick";

/** Name of the policy in a service config's `loadBalancingConfig`. */
export const LEAST_REQUEST_POLICY = "least_request";

/** Settings of `least_request`, validated. */
export interface LeastRequestSettings {
  /** Endpoints drawn per pick (an integer from 2 to 100; default 2, the power of two choices). */
  readonly choiceCount: number;
  /** Exponent of the outstanding count in the weighted comparison (> 0, default 1). Matters only when weights differ. */
  readonly activeRequestBias: number;
}

export const LEAST_REQUEST_DEFAULTS: LeastRequestSettings = { choiceCount: 2, activeRequestBias: 1 };

const MAX_CHOICES = 100;

/** Validates `{ choiceCount?, activeRequestBias? }`; errors start with `where`. */
export function parseLeastRequestSettings(raw: unknown, where = LEAST_REQUEST_POLICY): LeastRequestSettings {
  if (raw === undefined || raw === null) return LEAST_REQUEST_DEFAULTS;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new TypeError(`${where}: expected an object, got ${Array.isArray(raw) ? "an array" : typeof raw}`);
  const settings = { ...LEAST_REQUEST_DEFAULTS };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === "choiceCount") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 2 || value > MAX_CHOICES) {
        throw new RangeError(`${where}.choiceCount must be an integer from 2 to ${MAX_CHOICES}, got ${JSON.stringify(value)}`);
      }
      settings.choiceCount = value;
    } else if (key === "activeRequestBias") {
      if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new RangeError(`${where}.activeRequestBias must be a number greater than 0, got ${JSON.stringify(value)}`);
      settings.activeRequestBias = value;
    } else {
      throw new TypeError(`${where}: unknown option "${key}" (expected one of ${Object.keys(LEAST_REQUEST_DEFAULTS).join(", ")})`);
    }
  }
  return settings;
}

export class LeastRequestLoadBalancingConfig implements experimental.TypedLoadBalancingConfig {
  constructor(readonly settings: LeastRequestSettings) {}

  getLoadBalancerName(): string {
    return LEAST_REQUEST_POLICY;
  }

  toJsonObject(): object {
    return { [LEAST_REQUEST_POLICY]: { ...this.settings } };
  }

  static createFromJson(obj: unknown): LeastRequestLoadBalancingConfig {
    return new LeastRequestLoadBalancingConfig(parseLeastRequestSettings(obj));
  }
}

/** Per-endpoint state that outlives pickers: calls outstanding from this client, counted from the pick. */
export interface LeastRequestState {
  outstanding: number;
  readonly observer: CallObserver;
}

/** A fresh endpoint state with its counter wired. */
export function leastRequestState(): LeastRequestState {
  const state: LeastRequestState = {
    outstanding: 0,
    observer: { claim: () => void state.outstanding++, release: () => void state.outstanding--, opened: () => {}, closed: () => {} },
  };
  return state;
}

export class LeastRequestPicker implements experimental.Picker {
  private readonly ready: number[] = [];
  /** Whether the READY endpoints' weights differ; equal weights compare outstanding counts alone. */
  private readonly weighted: boolean;

  constructor(
    private readonly entries: readonly PickerEntry<LeastRequestState>[],
    private readonly selector: TrafficSelector | undefined,
    private readonly settings: LeastRequestSettings,
    private readonly random: () => number = Math.random,
  ) {
    entries.forEach((e, i) => e.picker !== null && this.ready.push(i));
    const weights = new Set(this.ready.map((i) => weightOf(entries[i])));
    this.weighted = weights.size > 1;
  }

  pick(pickArgs: experimental.PickArgs): experimental.PickResult {
    let indices: readonly number[] = this.ready;
    if (this.selector !== undefined) {
      const selection = this.selector.select(pickArgs);
      if (selection.kind === "queue") return QUEUE_RESULT;
      if (selection.kind === "fail") return failResult(selection.message);
      indices = selection.group.indices;
    }
    const chosen = this.entries[this.choose(indices)];
    const result = chosen.picker!.pick(pickArgs);
    if (result.pickResultType !== grpc.experimental.PickResultType.COMPLETE) return result;
    return new TrackedPick(result, chosen.member.state.observer, 0); // the pick time feeds no estimate here
  }

  private choose(indices: readonly number[]): number {
    const n = indices.length;
    if (n === 1) return indices[0];
    const random = this.random;
    if (this.settings.choiceCount === 2) {
      // Two distinct draws: the common case, without a candidate list.
      const i = Math.floor(random() * n);
      let j = Math.floor(random() * (n - 1));
      if (j >= i) j++;
      const a = indices[i];
      const b = indices[j];
      return this.better(b, a) ? b : a;
    }
    if (this.settings.choiceCount >= n) {
      // As many choices as endpoints: a full scan from a random start, so ties do not always go to the first.
      const start = Math.floor(random() * n);
      let best = indices[start];
      for (let k = 1; k < n; k++) {
        const c = indices[(start + k) % n];
        if (this.better(c, best)) best = c;
      }
      return best;
    }
    // More than two choices among more endpoints: draws with replacement, as Envoy does.
    let best = indices[Math.floor(random() * n)];
    for (let k = 1; k < this.settings.choiceCount; k++) {
      const c = indices[Math.floor(random() * n)];
      if (this.better(c, best)) best = c;
    }
    return best;
  }

  /** Whether entry `a` should take the call over entry `b` (ties keep `b`, the earlier draw). */
  private better(a: number, b: number): boolean {
    const ea = this.entries[a];
    const eb = this.entries[b];
    const oa = ea.member.state.outstanding;
    const ob = eb.member.state.outstanding;
    if (!this.weighted) return oa < ob;
    const bias = this.settings.activeRequestBias;
    return weightOf(ea) / Math.pow(oa + 1, bias) > weightOf(eb) / Math.pow(ob + 1, bias);
  }
}

function weightOf(entry: PickerEntry<LeastRequestState>): number {
  const w = entry.info?.weight;
  return typeof w === "number" && Number.isFinite(w) && w > 0 ? w : 1;
}

export class LeastRequestLoadBalancer extends EndpointBalancer<LeastRequestLoadBalancingConfig, LeastRequestState> {
  getTypeName(): string {
    return LEAST_REQUEST_POLICY;
  }

  protected isConfig(config: experimental.TypedLoadBalancingConfig): config is LeastRequestLoadBalancingConfig {
    return config instanceof LeastRequestLoadBalancingConfig;
  }

  protected createState(): LeastRequestState {
    return leastRequestState();
  }

  protected buildPicker(entries: readonly PickerEntry<LeastRequestState>[], selector: TrafficSelector | undefined, config: LeastRequestLoadBalancingConfig): experimental.Picker {
    return new LeastRequestPicker(entries, selector, config.settings);
  }
}

/** Registers `least_request` with grpc-js; repeating the call is harmless. */
export function setupLeastRequest(): void {
  grpc.experimental.registerLoadBalancerType(LEAST_REQUEST_POLICY, LeastRequestLoadBalancer, LeastRequestLoadBalancingConfig);
}
