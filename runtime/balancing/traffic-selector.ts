/**
 * The traffic rule inside a picker: for each call, which of the picker's members may take it.
 * Built with the picker (on every membership, state or rule change), so the per-call cost is a
 * route choice plus a cached lookup; the partition into subsets, the fallback and the zone
 * preference are worked out once per resolution and reused.
 */
import type { experimental } from "@grpc/grpc-js";
import type { InstanceInfo } from "./instances";
import type { CompiledRoute, CompiledRule } from "./rule-compile";
import { chooseRoute, TrafficPlan, type RequestAttributes, type Resolution } from "./rule-evaluate";
import { METHOD_PICK_INFO } from "./traffic-attributes";

/** What the selector needs of one picker member. */
export interface SelectableMember {
  /** The registry's record of the endpoint; undefined when the resolver gave none (no labels). */
  readonly info: InstanceInfo | undefined;
  readonly ready: boolean;
  /** Not ready but trying to connect (CONNECTING or IDLE). */
  readonly connecting: boolean;
}

/** Members allowed for a call: indices into the picker's member list, all READY. */
export interface MemberGroup {
  readonly indices: readonly number[];
  /** `mask[i] === 1` when member `i` is in the group. */
  readonly mask: Uint8Array;
  /** Round-robin position inside the group (pickers advance it). */
  cursor: number;
}

export type Selection =
  | { readonly kind: "group"; readonly group: MemberGroup }
  | { readonly kind: "queue" }
  | { readonly kind: "fail"; readonly message: string };

/** A member as the rule model sees it: labels from the instance table, and its position. */
interface Slot {
  readonly index: number;
  readonly id: string | undefined;
  readonly version: string | undefined;
  readonly zone: string | undefined;
  readonly metadata: Readonly<Record<string, string>> | undefined;
}

export class TrafficSelector {
  private readonly plan: TrafficPlan<Slot>;
  private readonly groups = new Map<Resolution<Slot>, Selection>();
  private readonly byChoice = new Map<CompiledRoute | undefined, Map<string | undefined, Selection>>();
  /** Reused per call: the pick's metadata seen through the rule model's request interface. */
  private current: experimental.PickArgs | undefined;
  private readonly request: { method: string | undefined; header: (name: string) => string | undefined };

  constructor(
    readonly rule: CompiledRule,
    private readonly members: readonly SelectableMember[],
    zone: string | undefined,
  ) {
    const slots: Slot[] = members.map((m, index) => ({ index, id: m.info?.id, version: m.info?.version, zone: m.info?.zone, metadata: m.info?.metadata }));
    this.plan = new TrafficPlan(rule, slots, {
      isReady: (s) => members[s.index].ready,
      isConnecting: (s) => members[s.index].connecting,
      zone,
    });
    this.request = {
      method: undefined,
      header: (name) => {
        const values = this.current!.metadata.get(name);
        if (values.length === 0) return undefined;
        const v = values[0];
        return typeof v === "string" ? v : v.toString("latin1");
      },
    };
  }

  /** The members a call may go to, or queue / fail. */
  select(pickArgs: experimental.PickArgs): Selection {
    this.current = pickArgs;
    this.request.method = pickArgs.extraPickInfo[METHOD_PICK_INFO];
    const choice = chooseRoute(this.rule, this.request as RequestAttributes);
    this.current = undefined;
    // Per call: two map lookups by identity (route, then subset); the resolution is worked out once.
    let bySubset = this.byChoice.get(choice.route);
    if (bySubset === undefined) {
      bySubset = new Map();
      this.byChoice.set(choice.route, bySubset);
    }
    let selection = bySubset.get(choice.subset);
    if (selection === undefined) {
      const resolution = this.plan.resolve(choice.subset, choice.route?.fallback ?? this.rule.fallback);
      selection = this.groups.get(resolution);
      if (selection === undefined) {
        selection = this.toSelection(resolution);
        this.groups.set(resolution, selection);
      }
      bySubset.set(choice.subset, selection);
    }
    return selection;
  }

  private toSelection(resolution: Resolution<Slot>): Selection {
    if (resolution.status === "wait") return { kind: "queue" };
    if (resolution.status === "unavailable") return { kind: "fail", message: `traffic rule: ${resolution.message}` };
    const mask = new Uint8Array(this.members.length);
    const indices = resolution.instances.map((s) => s.index);
    for (const i of indices) mask[i] = 1;
    return { kind: "group", group: { indices, mask, cursor: Math.floor(Math.random() * indices.length) } };
  }
}
