/**
 * `protomesh_round_robin`: round robin over the READY endpoints a service's traffic rule allows
 * for each call (all of them when the service has no rule). What `balancer: "round_robin"` means
 * in a protomesh client; grpc-js's own `round_robin` cannot see a rule, since its picker never
 * looks at the call.
 */
import type { experimental } from "@grpc/grpc-js";
import * as grpc from "@grpc/grpc-js";
import { EndpointBalancer, failResult, QUEUE_RESULT, type PickerEntry } from "./endpoint-balancer";
import type { TrafficSelector } from "./traffic-selector";

/** Name of the policy in a service config's `loadBalancingConfig`. */
export const ROUND_ROBIN_POLICY = "protomesh_round_robin";

export class RoundRobinLoadBalancingConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return ROUND_ROBIN_POLICY;
  }

  toJsonObject(): object {
    return { [ROUND_ROBIN_POLICY]: {} };
  }

  static createFromJson(obj: unknown): RoundRobinLoadBalancingConfig {
    if (obj !== undefined && obj !== null && (typeof obj !== "object" || Array.isArray(obj) || Object.keys(obj).length > 0)) {
      throw new TypeError(`${ROUND_ROBIN_POLICY}: takes no settings, got ${JSON.stringify(obj)}`);
    }
    return new RoundRobinLoadBalancingConfig();
  }
}

/** Round robin inside the group the rule allows; one cursor per group. */
export class RoundRobinPicker implements experimental.Picker {
  private readonly ready: number[] = [];
  private cursor: number;

  constructor(
    private readonly entries: readonly PickerEntry<null>[],
    private readonly selector: TrafficSelector | undefined,
    cursor: number,
  ) {
    entries.forEach((e, i) => e.picker !== null && this.ready.push(i));
    this.cursor = cursor % this.ready.length;
  }

  pick(pickArgs: experimental.PickArgs): experimental.PickResult {
    let chosen: number;
    if (this.selector === undefined) {
      chosen = this.ready[this.cursor];
      this.cursor = (this.cursor + 1) % this.ready.length;
    } else {
      const selection = this.selector.select(pickArgs);
      if (selection.kind === "queue") return QUEUE_RESULT;
      if (selection.kind === "fail") return failResult(selection.message);
      const group = selection.group;
      chosen = group.indices[group.cursor % group.indices.length];
      group.cursor = (group.cursor + 1) % group.indices.length;
    }
    return this.entries[chosen].picker!.pick(pickArgs);
  }

  get position(): number {
    return this.cursor;
  }
}

export class RoundRobinLoadBalancer extends EndpointBalancer<RoundRobinLoadBalancingConfig, null> {
  private lastPicker: RoundRobinPicker | undefined;

  getTypeName(): string {
    return ROUND_ROBIN_POLICY;
  }

  protected isConfig(config: experimental.TypedLoadBalancingConfig): config is RoundRobinLoadBalancingConfig {
    return config instanceof RoundRobinLoadBalancingConfig;
  }

  protected createState(): null {
    return null;
  }

  protected buildPicker(entries: readonly PickerEntry<null>[], selector: TrafficSelector | undefined): experimental.Picker {
    // Carry the cursor on, starting at random the first time, so a fleet of fresh clients does not all start at one endpoint.
    const start = this.lastPicker?.position ?? Math.floor(Math.random() * entries.length);
    this.lastPicker = new RoundRobinPicker(entries, selector, start);
    return this.lastPicker;
  }
}

/** Registers `protomesh_round_robin` with grpc-js; repeating the call is harmless. */
export function setupRoundRobin(): void {
  grpc.experimental.registerLoadBalancerType(ROUND_ROBIN_POLICY, RoundRobinLoadBalancer, RoundRobinLoadBalancingConfig);
}
