/**
 * The part our per-endpoint policies (`protomesh_round_robin`, `p2c`, `least_request`) share,
 * structured like grpc-js's round_robin: one LeafLoadBalancer per endpoint, kept across resolver updates while
 * the endpoint stays; an immutable picker rebuilt on every child state change, membership change
 * or traffic-rule change. The policy says how to pick inside the members a rule allows.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { instancesFromOptions, type InstanceInfo } from "./instances";
import { trafficFromOptions, zoneFromOptions, type TrafficState } from "./traffic-attributes";
import { TrafficSelector, type SelectableMember } from "./traffic-selector";

type ChannelControlHelper = experimental.ChannelControlHelper;
type Endpoint = experimental.Endpoint;
type Picker = experimental.Picker;
type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;

const { LeafLoadBalancer, QueuePicker, UnavailablePicker, createChildChannelControlHelper, subchannelAddressToString } = grpc.experimental;
type LeafLoadBalancer = InstanceType<typeof LeafLoadBalancer>;
const ConnectivityState = grpc.connectivityState;
type ConnectivityState = grpc.connectivityState;

/** One endpoint of the current membership. `state` is policy-specific and outlives pickers. */
export interface EndpointMember<S> {
  readonly key: string;
  readonly leaf: LeafLoadBalancer;
  info: InstanceInfo | undefined;
  readonly state: S;
  /** Its first connection attempt has ended (READY or failed). */
  settled: boolean;
}

/** A member as a picker sees it: its own picker when READY, else null. */
export interface PickerEntry<S> extends SelectableMember {
  readonly member: EndpointMember<S>;
  readonly picker: Picker | null;
}

export abstract class EndpointBalancer<C extends TypedLoadBalancingConfig, S> implements experimental.LoadBalancer {
  protected members = new Map<string, EndpointMember<S>>();
  protected config: C | undefined;
  private traffic: TrafficState | undefined;
  private zone: string | undefined;
  private currentState: ConnectivityState = ConnectivityState.IDLE;
  private updatesPaused = false;
  private destroyed = false;
  private lastError: string | null = null;
  private readonly childHelper: ChannelControlHelper;
  /** When the first member of a cold start became READY (see {@link COLD_HOLD_MS}). */
  private coldSince: number | undefined;
  private coldTimer: NodeJS.Timeout | undefined;

  constructor(protected readonly channelControlHelper: ChannelControlHelper) {
    this.childHelper = createChildChannelControlHelper(channelControlHelper, {
      updateState: (state, _picker, errorMessage) => {
        // As round_robin does: a lost connection may mean the address went away; resolvers rate-limit this.
        if (this.currentState === ConnectivityState.READY && state !== ConnectivityState.READY) this.channelControlHelper.requestReresolution();
        if (errorMessage) this.lastError = errorMessage;
        this.calculateAndUpdateState();
      },
    });
  }

  /** The policy's name, as a service config spells it. */
  abstract getTypeName(): string;
  protected abstract isConfig(config: TypedLoadBalancingConfig): config is C;
  protected abstract createState(): S;
  /** A picker over `entries` (aligned with the members; at least one READY). */
  protected abstract buildPicker(entries: readonly PickerEntry<S>[], selector: TrafficSelector | undefined, config: C): Picker;

  updateAddressList(maybeEndpoints: experimental.StatusOr<Endpoint[]>, lbConfig: TypedLoadBalancingConfig, options: grpc.ChannelOptions, resolutionNote: string): boolean {
    if (!this.isConfig(lbConfig) || this.destroyed) return false;
    this.config = lbConfig;
    if (!maybeEndpoints.ok) {
      // A failed resolution keeps the last membership: only fail if there is none.
      if (this.members.size === 0) this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(maybeEndpoints.error), maybeEndpoints.error.details);
      return true;
    }
    this.traffic = trafficFromOptions(options);
    this.zone = zoneFromOptions(options);
    const instances = instancesFromOptions(options);
    const next = new Map<string, EndpointMember<S>>();
    const endpoints: [EndpointMember<S>, Endpoint, boolean][] = [];
    for (const endpoint of maybeEndpoints.value) {
      const first = endpoint.addresses[0];
      if (first === undefined) continue;
      const key = subchannelAddressToString(first);
      if (next.has(key)) continue;
      const existing = this.members.get(key);
      const member = existing ?? { key, leaf: new LeafLoadBalancer(endpoint, this.childHelper, options, resolutionNote), info: undefined, state: this.createState(), settled: false };
      member.info = instances?.get(key);
      next.set(key, member);
      endpoints.push([member, endpoint, existing !== undefined]);
    }
    this.updatesPaused = true;
    for (const [key, member] of this.members) if (!next.has(key)) member.leaf.destroy();
    this.members = next;
    for (const [member, endpoint, reused] of endpoints) {
      if (reused) member.leaf.updateEndpoint(endpoint, options);
      else member.leaf.startConnecting();
    }
    this.updatesPaused = false;
    if (next.size === 0) {
      const message = `${this.getTypeName()}: no addresses resolved. Resolution note: ${resolutionNote}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
      return true;
    }
    this.calculateAndUpdateState();
    return true;
  }

  exitIdle(): void {
    for (const member of this.members.values()) if (member.leaf.getConnectivityState() === ConnectivityState.IDLE) member.leaf.exitIdle();
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; LeafLoadBalancer offers no reset.
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.coldTimer);
    for (const member of this.members.values()) member.leaf.destroy();
    this.members.clear();
  }

  private calculateAndUpdateState(): void {
    if (this.updatesPaused || this.destroyed || this.config === undefined) return;
    let ready = 0;
    let connecting = 0;
    let failing = 0;
    let unsettled = 0;
    const entries: PickerEntry<S>[] = [];
    for (const member of this.members.values()) {
      const state = member.leaf.getConnectivityState();
      const isReady = state === ConnectivityState.READY;
      if (isReady || state === ConnectivityState.TRANSIENT_FAILURE) member.settled = true;
      if (!member.settled) unsettled++;
      if (isReady) ready++;
      else if (state === ConnectivityState.CONNECTING) connecting++;
      else if (state === ConnectivityState.TRANSIENT_FAILURE) failing++;
      entries.push({
        member,
        info: member.info,
        picker: isReady ? member.leaf.getPicker() : null,
        ready: isReady,
        connecting: state === ConnectivityState.CONNECTING || state === ConnectivityState.IDLE,
      });
    }
    if (ready > 0 && unsettled > 0 && this.holdCold()) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (ready > 0) {
      const rule = this.traffic?.rule;
      const selector = rule === undefined ? undefined : new TrafficSelector(rule, entries, this.zone);
      this.updateState(ConnectivityState.READY, this.buildPicker(entries, selector, this.config), null);
    } else if (connecting > 0) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (failing > 0) {
      const message = `${this.getTypeName()}: no connection established. Last error: ${this.lastError}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
    } else {
      this.updateState(ConnectivityState.IDLE, new QueuePicker(this), null);
    }
    // Keep every member connected: a subset's fallback, a spill-over zone or a p2c second
    // choice must be READY when it is needed, not start connecting then.
    for (const member of this.members.values()) if (member.leaf.getConnectivityState() === ConnectivityState.IDLE) member.leaf.exitIdle();
  }

  /**
   * Whether calls queued on a cold channel should keep waiting for the other first connections.
   * Without this, the first READY endpoint takes every queued call (a burst of 300 on a new
   * channel all landed on one instance). The wait is bounded: {@link COLD_HOLD_MS} after the first
   * endpoint is READY, the picker serves whatever is READY then.
   */
  private holdCold(): boolean {
    const now = performance.now();
    if (this.coldSince === undefined) {
      this.coldSince = now;
      this.coldTimer = setTimeout(() => {
        this.coldTimer = undefined;
        this.calculateAndUpdateState();
      }, COLD_HOLD_MS);
      this.coldTimer.unref?.();
    }
    return now - this.coldSince < COLD_HOLD_MS;
  }

  private updateState(state: ConnectivityState, picker: Picker, errorMessage: string | null): void {
    grpc.experimental.trace(grpc.logVerbosity.DEBUG, this.getTypeName(), `${ConnectivityState[this.currentState]} -> ${ConnectivityState[state]}`);
    this.currentState = state;
    this.channelControlHelper.updateState(state, picker, errorMessage);
  }
}

/**
 * Longest a cold channel holds queued calls, once one endpoint is READY, for the others' first
 * connection attempts to finish (ms). Loopback connections settle within a few ms of each other.
 */
export const COLD_HOLD_MS = 50;

/** The result of a pick that must wait (a rule's subset still connecting). */
export const QUEUE_RESULT: experimental.PickResult = {
  pickResultType: grpc.experimental.PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

/** The result of a pick the rule refuses (subset empty, fallback `fail`). */
export function failResult(message: string): experimental.PickResult {
  return {
    pickResultType: grpc.experimental.PickResultType.TRANSIENT_FAILURE,
    subchannel: null,
    status: { code: grpc.status.UNAVAILABLE, details: message, metadata: new grpc.Metadata() },
    onCallStarted: null,
    onCallEnded: null,
  };
}
