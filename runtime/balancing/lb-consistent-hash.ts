/**
 * `consistent_hash`: a grpc-js load-balancing policy that sends every call carrying the
 * same key (a request header) to the same endpoint.
 *
 * The ring is built from every endpoint the resolver reports, whatever its connection
 * state, so a reconnect moves no keys; only membership changes do. A key whose owner is
 * not READY goes to the next READY member in ring order. Calls without a key are spread
 * round-robin. With bounded load on, a member already holding its share of in-flight
 * calls (times the factor) is passed over like a member that is not READY.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { DEFAULT_VNODES, HashRing, MAX_VNODES, RingBuild, VnodeHashes, boundedLoadCapacity, hashString, type RingMember } from "./hash-ring";
import { instancesFromOptions } from "./instances";
import { failResult, QUEUE_RESULT } from "./endpoint-balancer";
import { trafficFromOptions, zoneFromOptions, type TrafficState } from "./traffic-attributes";
import { TrafficSelector } from "./traffic-selector";
import { TrackedPick, type CallObserver } from "./tracked-pick";
import type { InstanceInfo } from "./instances";

type ChannelControlHelper = experimental.ChannelControlHelper;
type Endpoint = experimental.Endpoint;
type LoadBalancer = experimental.LoadBalancer;
type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;
type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;

const { LeafLoadBalancer, QueuePicker, UnavailablePicker, createChildChannelControlHelper, registerLoadBalancerType, subchannelAddressToString } =
  grpc.experimental;
type LeafLoadBalancer = InstanceType<typeof LeafLoadBalancer>;

const ConnectivityState = grpc.connectivityState;
type ConnectivityState = grpc.connectivityState;

/** Name of the policy in a service config's `loadBalancingConfig`. */
export const CONSISTENT_HASH_POLICY = "consistent_hash";

/** Request header read for the hash key when the config names none. */
export const DEFAULT_HASH_HEADER = "x-protomesh-hash-key";

function trace(text: string): void {
  grpc.experimental.trace(grpc.logVerbosity.DEBUG, CONSISTENT_HASH_POLICY, text);
}

/** The policy's settings, validated. */
export interface ConsistentHashSettings {
  /** Lower-case request header that carries the key. */
  readonly header: string;
  /** Virtual nodes per member of mean weight. */
  readonly vnodes: number;
  /** Bounded-load factor `c` (> 1), or `undefined` when bounded load is off. */
  readonly boundedLoad: number | undefined;
}

/**
 * Validates consistent-hash settings (`{ header?, vnodes?, boundedLoad? }`), filling in
 * defaults. Throws a `TypeError` or `RangeError` whose message starts with `where`.
 */
export function parseConsistentHashSettings(raw: unknown, where = CONSISTENT_HASH_POLICY): ConsistentHashSettings {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new TypeError(`${where}: expected an object, got ${describe(raw)}`);
  const obj = raw as Record<string, unknown>;

  let header = DEFAULT_HASH_HEADER;
  if (obj.header !== undefined) {
    if (typeof obj.header !== "string") throw new TypeError(`${where}.header must be a string, got ${describe(obj.header)}`);
    header = obj.header.trim().toLowerCase();
    if (!/^[0-9a-z_.-]+$/.test(header)) {
      throw new RangeError(`${where}.header must be a header name of [0-9a-z_.-] characters, got ${JSON.stringify(obj.header)}`);
    }
    if (header.startsWith("grpc-")) throw new RangeError(`${where}.header must not use the reserved grpc- prefix, got "${header}"`);
    if (header.endsWith("-bin")) throw new RangeError(`${where}.header must be a text header, not a binary (-bin) one, got "${header}"`);
  }

  let vnodes = DEFAULT_VNODES;
  if (obj.vnodes !== undefined) {
    if (typeof obj.vnodes !== "number") throw new TypeError(`${where}.vnodes must be a number, got ${describe(obj.vnodes)}`);
    if (!Number.isInteger(obj.vnodes) || obj.vnodes < 1 || obj.vnodes > MAX_VNODES) {
      throw new RangeError(`${where}.vnodes must be an integer from 1 to ${MAX_VNODES}, got ${obj.vnodes}`);
    }
    vnodes = obj.vnodes;
  }

  let boundedLoad: number | undefined;
  if (obj.boundedLoad !== undefined) {
    if (typeof obj.boundedLoad !== "number") throw new TypeError(`${where}.boundedLoad must be a number, got ${describe(obj.boundedLoad)}`);
    if (!Number.isFinite(obj.boundedLoad) || obj.boundedLoad <= 1) {
      throw new RangeError(`${where}.boundedLoad must be a finite factor greater than 1 (such as 1.25), got ${obj.boundedLoad}`);
    }
    boundedLoad = obj.boundedLoad;
  }
  return { header, vnodes, boundedLoad };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}

/** The `consistent_hash` entry of a service config, parsed. */
export class ConsistentHashLoadBalancingConfig implements TypedLoadBalancingConfig {
  constructor(readonly settings: ConsistentHashSettings) {}

  getLoadBalancerName(): string {
    return CONSISTENT_HASH_POLICY;
  }

  toJsonObject(): object {
    const { header, vnodes, boundedLoad } = this.settings;
    return { [CONSISTENT_HASH_POLICY]: boundedLoad === undefined ? { header, vnodes } : { header, vnodes, boundedLoad } };
  }

  static createFromJson(obj: unknown): ConsistentHashLoadBalancingConfig {
    return new ConsistentHashLoadBalancingConfig(parseConsistentHashSettings(obj));
  }
}

/** In-flight calls on one member; outlives pickers so counts survive state changes. */
export interface LoadCell {
  inFlight: number;
}

/** In-flight calls on all members, including ones since removed whose calls still run. */
export interface LoadBook {
  total: number;
}

/** One endpoint of the current membership and the LeafLoadBalancer connecting to it. */
interface Member {
  readonly key: string;
  /**
   * The child connecting to the endpoint, made when the member leaves the connect queue: making
   * 1,000 children (each a pick_first balancer, which sets and clears a timer) took some 13 ms
   * of a fresh process's first resolver turn, a cost the queue now spreads over its slices.
   */
  leaf: LeafLoadBalancer | null;
  /** The endpoint and options the child is made with (kept up to date until it is). */
  endpoint: Endpoint;
  options: grpc.ChannelOptions;
  weight: number;
  /**
   * Whether the child has been made and given its endpoint (`leaf !== null`). Until then the
   * member waits in the policy's connect queue and counts as connecting.
   */
  readonly started: boolean;
  /** READY in the picker last published: leaving READY must replace that picker at once. */
  publishedReady: boolean;
  /** Connects the member now: the first time by giving the leaf its endpoint, later by leaving IDLE. */
  readonly exitIdle: () => void;
  readonly load: LoadCell;
  /** Counts the member's picked calls into `load` (see {@link TrackedPick}). */
  readonly observer: CallObserver;
}

/** What a picker needs of one ring member: its picker when READY, and its load. */
export interface PickerMember {
  /** The member's own picker when it is READY, else `null`. */
  readonly picker: Picker | null;
  /** Connectivity state when the picker was built. */
  readonly state: ConnectivityState;
  /** Asks the member to connect (used when a key's owner is IDLE). */
  readonly exitIdle: () => void;
  readonly load: LoadCell;
  readonly observer: CallObserver;
}

/**
 * Picker for a policy with at least one READY member. Its view of the members is fixed
 * (only the keyless round-robin cursor moves); the policy builds a new one on every change.
 */
export class ConsistentHashPicker implements Picker {
  private readonly ready: number[];
  private readonly isReady: (i: number) => boolean;
  private readonly hasRoom: (i: number) => boolean;
  private capacity = 0;

  /**
   * @param members Aligned with `ring.members`; at least one has a picker.
   */
  constructor(
    private readonly ring: HashRing,
    private readonly members: readonly PickerMember[],
    private readonly header: string,
    private readonly boundedLoad: number | undefined,
    private readonly book: LoadBook,
    private nextReady = 0,
    private readonly selector?: TrafficSelector,
  ) {
    this.ready = [];
    for (const [i, m] of members.entries()) if (m.picker !== null) this.ready.push(i);
    this.nextReady = nextReady % Math.max(1, this.ready.length);
    this.isReady = (i) => this.members[i].picker !== null;
    this.hasRoom = (i) => this.members[i].picker !== null && this.members[i].load.inFlight < this.capacity;
  }

  pick(pickArgs: PickArgs): PickResult {
    if (this.selector !== undefined) return this.pickInGroup(pickArgs, this.selector);
    const key = this.keyOf(pickArgs);
    let chosen: number;
    if (key === undefined) {
      chosen = this.nextKeyless();
    } else {
      const hash = hashString(key);
      // Like gRPC's ring_hash: while a key's owner is still connecting (or idle), wait for it
      // rather than send the key elsewhere; fall over only when the owner has failed.
      const owner = this.members[this.ring.find(hash, () => true)];
      if (owner !== undefined && owner.picker === null && owner.state !== ConnectivityState.TRANSIENT_FAILURE) {
        if (owner.state === ConnectivityState.IDLE) process.nextTick(owner.exitIdle);
        return QUEUE_RESULT;
      }
      if (this.boundedLoad === undefined) {
        chosen = this.ring.find(hash, this.isReady);
      } else {
        this.capacity = boundedLoadCapacity(this.boundedLoad, this.book.total, this.ready.length);
        chosen = this.ring.find(hash, this.hasRoom);
        // Capacities sum to more than the calls in flight, so this is only a safety net.
        if (chosen < 0) chosen = this.ring.find(hash, this.isReady);
      }
    }
    const member = this.members[chosen];
    const result = member.picker!.pick(pickArgs);
    if (this.boundedLoad === undefined || result.pickResultType !== grpc.experimental.PickResultType.COMPLETE) return result;
    return new TrackedPick(result, member.observer, 0);
  }

  /**
   * With a traffic rule: the key's ring successor among the READY members the rule allows for
   * this call (keyless calls round-robin inside them). A rule change moves only the keys whose
   * allowed set changed.
   */
  private pickInGroup(pickArgs: PickArgs, selector: TrafficSelector): PickResult {
    const selection = selector.select(pickArgs);
    if (selection.kind === "queue") return QUEUE_RESULT;
    if (selection.kind === "fail") return failResult(selection.message);
    const group = selection.group;
    const key = this.keyOf(pickArgs);
    let chosen: number;
    if (key === undefined) {
      chosen = group.indices[group.cursor % group.indices.length];
      group.cursor = (group.cursor + 1) % group.indices.length;
    } else {
      const hash = hashString(key);
      const allowed = (i: number) => group.mask[i] === 1;
      if (this.boundedLoad === undefined) {
        chosen = this.ring.find(hash, allowed);
      } else {
        this.capacity = boundedLoadCapacity(this.boundedLoad, this.book.total, group.indices.length);
        chosen = this.ring.find(hash, (i) => group.mask[i] === 1 && this.members[i].load.inFlight < this.capacity);
        if (chosen < 0) chosen = this.ring.find(hash, allowed);
      }
    }
    const member = this.members[chosen];
    const result = member.picker!.pick(pickArgs);
    if (this.boundedLoad === undefined || result.pickResultType !== grpc.experimental.PickResultType.COMPLETE) return result;
    return new TrackedPick(result, member.observer, 0);
  }

  private keyOf(pickArgs: PickArgs): string | undefined {
    const values = pickArgs.metadata.get(this.header);
    if (values.length === 0) return undefined;
    const value = values[0];
    return typeof value === "string" ? value : value.toString("latin1");
  }

  private nextKeyless(): number {
    const chosen = this.ready[this.nextReady];
    this.nextReady = (this.nextReady + 1) % this.ready.length;
    return chosen;
  }

  /** Where the round-robin cursor for keyless calls stands, so a new picker can carry it on. */
  get cursor(): number {
    return this.nextReady;
  }
}


/**
 * `subchannelAddressToString` of the endpoint's first address. That function asks `isIPv6` of
 * every host, a regular expression that runs interpreted until V8 has seen it often: 1,000 calls
 * in a fresh process took some 15 ms of the first resolver turn. A host without a colon is no
 * IPv6 address, so `host:port` is its answer without asking.
 */
export function endpointKey(endpoint: Endpoint): string | undefined {
  const first = endpoint.addresses[0];
  if (first === undefined) return undefined;
  if ("port" in first && !first.host.includes(":")) return `${first.host}:${first.port}`;
  return subchannelAddressToString(first);
}

function sanitizeWeight(weight: unknown): number {
  return typeof weight === "number" && Number.isFinite(weight) && weight > 0 ? weight : 1;
}

/**
 * Most members that start connecting per event-loop turn. Starting one (a subchannel, a
 * socket, an HTTP/2 session) costs a few hundred microseconds of the loop, more before the JIT
 * has warmed up; a membership of up to 50 still starts all at once, as before.
 */
export const CONNECT_SLICE = 50;

/**
 * With more than a slice waiting, a turn also stops starting members after this long (at least
 * one starts): on a slow or busy machine a slice can take far longer than it should.
 */
const CONNECT_BUDGET_MS = 5;

/**
 * Most members of the connect queue connecting at once. Each connection that completes costs
 * the loop its HTTP/2 session setup (some 0.3 ms, more before the JIT has warmed up) in the
 * turn it completes in; starting a fixed number per turn let hundreds be pending when the peer
 * answered slowly, and then complete in one turn. The queue starts the next member as one
 * completes (READY or failed), so no turn sees more than this many completions.
 */
export const CONNECT_PENDING = 32;

/**
 * A member still connecting after this long no longer holds one of the
 * {@link CONNECT_PENDING} places, so unreachable members (whose attempts run until the
 * connect timeout) cannot hold up the queue.
 */
export const CONNECT_PENDING_MS = 100;

/**
 * Longest a turn spends building the ring: a membership change builds the new ring a slice per
 * event-loop turn (262,144 points at 1,000 members take some 40 ms of CPU, three times that
 * before the JIT has warmed up), and the previous ring serves calls until it is complete.
 */
export const RING_SLICE_MS = 5;

/** A ring member that has left the membership while the ring in force still names it. */
const GONE: PickerMember = {
  picker: null,
  // Failed, as far as picking goes: its keys fall over to the next READY member in ring order.
  state: ConnectivityState.TRANSIENT_FAILURE,
  exitIdle: () => undefined,
  load: { inFlight: 0 },
  observer: { claim: () => undefined, release: () => undefined, opened: () => undefined, closed: () => undefined },
};

/**
 * The `consistent_hash` policy. One LeafLoadBalancer per endpoint, kept across resolver
 * updates while the endpoint stays; a picker rebuilt once per event-loop turn in which a
 * child changed state. New members start connecting {@link CONNECT_SLICE} per turn. A new
 * ring is built {@link RING_SLICE_MS} per turn while the previous one stays in force; on a
 * first resolution, calls queue until it is complete.
 */
export class ConsistentHashLoadBalancer implements LoadBalancer {
  private members = new Map<string, Member>();
  /** The ring in force: the pickers route by it. */
  private ring = new HashRing([]);
  /** The ring of the current membership, while it is being built (null when `ring` is it). */
  private build: {
    /** Made by the build's first slice (sorting 1,000 keys and setting up the arrays takes some 6 ms in a fresh process). */
    ring: RingBuild | null;
    readonly members: readonly RingMember[];
    readonly vnodes: number;
    readonly weights: ReadonlyMap<string, number>;
  } | null = null;
  private buildScheduled = false;
  /** Vnode hashes of current members, so a membership change hashes only the newcomers. */
  private readonly vnodeHashes = new VnodeHashes();
  private settings: ConsistentHashSettings | undefined;
  private traffic: TrafficState | undefined;
  private zone: string | undefined;
  private instances: ReadonlyMap<string, InstanceInfo> | undefined;
  private readonly book: LoadBook = { total: 0 };
  private currentState: ConnectivityState = ConnectivityState.IDLE;
  private currentPicker: ConsistentHashPicker | null = null;
  private updatesPaused = false;
  /** A child reported a change since the picker was last built. */
  private dirty = false;
  /** A rebuild is scheduled for this turn's check phase. */
  private flushScheduled = false;
  /** New members not yet started, in arrival order; started {@link CONNECT_SLICE} per turn. */
  private readonly toConnect = new Set<Member>();
  private connectScheduled = false;
  /** When a queued slice waits for a pending place to expire, its timer. */
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Members started and not yet READY or failed, with the time each started: they hold the
   * {@link CONNECT_PENDING} places until they settle or {@link CONNECT_PENDING_MS} passes.
   */
  private readonly pending = new Map<Member, number>();
  /** Inside {@link connectSlice}: the CONNECTING reports of members starting lose no connection. */
  private starting = false;
  private destroyed = false;
  private lastError: string | null = null;
  /**
   * @param ringSliceMs Longest a turn spends on a ring build (tests pass 0: one small chunk per turn).
   * @param connectPending Most members of the connect queue connecting at once.
   * @param connectPendingMs How long a connecting member holds its place (tests of the turn
   *   slicing pass 0: their fake connections never complete).
   */
  constructor(
    private readonly channelControlHelper: ChannelControlHelper,
    private readonly ringSliceMs: number = RING_SLICE_MS,
    private readonly connectPending: number = CONNECT_PENDING,
    private readonly connectPendingMs: number = CONNECT_PENDING_MS,
  ) {}

  private onChildState(member: Member, state: ConnectivityState, errorMessage: string | null): void {
    if (this.destroyed) return;
    // A settled attempt gives its place to the next member waiting (in this turn's check phase,
    // with the turn's other completions).
    const settled = state === ConnectivityState.READY || state === ConnectivityState.TRANSIENT_FAILURE;
    if (settled && this.pending.delete(member) && this.toConnect.size > 0) this.scheduleConnect(0);
    // As round_robin does: losing a connection may mean the address went away, so
    // ask the resolver to look again (resolvers rate-limit this).
    if (this.currentState === ConnectivityState.READY && state !== ConnectivityState.READY && !this.starting) {
      this.channelControlHelper.requestReresolution();
    }
    if (errorMessage) this.lastError = errorMessage;
    // The published picker hands out this member's subchannel while it is READY there. Once it
    // is not, grpc-js re-picks at once (in microtasks, without yielding to the check phase), so
    // that picker must be replaced now; every other change can wait for the end of the turn.
    if (member.publishedReady && state !== ConnectivityState.READY) this.calculateAndUpdateState();
    else this.scheduleUpdate();
  }

  updateAddressList(
    maybeEndpoints: experimental.StatusOr<Endpoint[]>,
    lbConfig: TypedLoadBalancingConfig,
    options: grpc.ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (!(lbConfig instanceof ConsistentHashLoadBalancingConfig) || this.destroyed) return false;
    this.settings = lbConfig.settings;
    if (!maybeEndpoints.ok) {
      // A failed resolution keeps the last membership: only fail if there is none.
      if (this.members.size === 0) {
        this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(maybeEndpoints.error), maybeEndpoints.error.details);
      }
      return true;
    }

    const instances = instancesFromOptions(options);
    this.instances = instances;
    this.traffic = trafficFromOptions(options);
    this.zone = zoneFromOptions(options);
    const next = new Map<string, Member>();
    const endpoints: [Member, Endpoint, boolean][] = [];
    for (const endpoint of maybeEndpoints.value) {
      const key = endpointKey(endpoint);
      if (key === undefined || next.has(key)) continue;
      const weight = sanitizeWeight(instances?.get(key)?.weight);
      const existing = this.members.get(key);
      const member = existing ?? this.createMember(key, endpoint, options, resolutionNote);
      member.weight = weight;
      next.set(key, member);
      endpoints.push([member, endpoint, existing !== undefined]);
    }

    this.updatesPaused = true;
    for (const [key, member] of this.members) {
      if (next.has(key)) continue;
      member.leaf?.destroy();
      this.toConnect.delete(member);
      this.pending.delete(member);
    }
    this.members = next;
    for (const [member, endpoint, reused] of endpoints) {
      // A reused member still waiting to start keeps its place; it starts with the new endpoint.
      if (!reused) this.toConnect.add(member);
      else if (member.leaf !== null) member.leaf.updateEndpoint(endpoint, options);
      else {
        member.endpoint = endpoint;
        member.options = options;
      }
    }
    this.connectSlice();
    this.startRing(next, lbConfig.settings.vnodes);
    this.updatesPaused = false;
    trace(`membership of ${next.size}: ${this.build === null ? `${this.ring.points} points` : "ring building"}`);

    if (next.size === 0) {
      const message = `${CONSISTENT_HASH_POLICY}: no addresses resolved. Resolution note: ${resolutionNote}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
      return true;
    }
    this.calculateAndUpdateState();
    return true;
  }

  /**
   * Members waiting in the connect queue are left to it: a QueuePicker calls this on the first
   * queued call, and starting 1,000 members here would be the very stall the queue avoids. A
   * call whose key a waiting member owns starts that member itself (the picker's exitIdle).
   */
  exitIdle(): void {
    for (const member of this.members.values()) {
      if (member.leaf !== null && member.leaf.getConnectivityState() === ConnectivityState.IDLE) member.leaf.exitIdle();
    }
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; LeafLoadBalancer offers no reset.
  }

  destroy(): void {
    this.destroyed = true;
    this.build = null;
    for (const member of this.members.values()) member.leaf?.destroy();
    this.members.clear();
    this.toConnect.clear();
    this.pending.clear();
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.currentPicker = null;
  }

  getTypeName(): string {
    return CONSISTENT_HASH_POLICY;
  }

  private createMember(key: string, endpoint: Endpoint, options: grpc.ChannelOptions, resolutionNote: string): Member {
    const load: LoadCell = { inFlight: 0 };
    const book = this.book;
    const toConnect = this.toConnect;
    const pending = this.pending;
    const member: Member = {
      key,
      leaf: null,
      endpoint,
      options,
      weight: 1,
      get started() {
        return member.leaf !== null;
      },
      publishedReady: false,
      exitIdle: () => {
        if (this.destroyed || this.members.get(key) !== member) return; // removed meanwhile
        if (member.leaf !== null) {
          member.leaf.exitIdle();
          return;
        }
        toConnect.delete(member);
        pending.set(member, performance.now());
        // Made here rather than on arrival, like the child: five bound functions per member.
        const helper = createChildChannelControlHelper(this.channelControlHelper, {
          updateState: (state, _picker, errorMessage) => this.onChildState(member, state, errorMessage),
        });
        member.leaf = new LeafLoadBalancer(member.endpoint, helper, member.options, resolutionNote);
        member.leaf.startConnecting();
      },
      load,
      observer: {
        claim: () => {
          load.inFlight++;
          book.total++;
        },
        release: () => {
          load.inFlight--;
          book.total--;
        },
        opened: () => undefined,
        closed: () => undefined,
      },
    };
    return member;
  }

  /**
   * Starts the next waiting members: as many as there are free places of
   * {@link CONNECT_PENDING}, at most {@link CONNECT_SLICE} and for at most
   * {@link CONNECT_BUDGET_MS}. The rest wait for a place: an attempt that settles frees one (see
   * {@link onChildState}), and so does an attempt older than {@link CONNECT_PENDING_MS}.
   */
  private connectSlice(): void {
    // Until a first ring is in force no call can be served, and each connection that completes
    // takes from the turns the build needs: after the first slice, the queue waits for the ring.
    if (this.build !== null && this.ring.size === 0 && this.connectPaused()) return;
    const now = performance.now();
    // In start order: the expired ones come first.
    for (const [member, since] of this.pending) {
      if (since > now - this.connectPendingMs) break;
      this.pending.delete(member);
    }
    const room = Math.min(CONNECT_SLICE, this.connectPending - this.pending.size);
    let started = 0;
    const until = this.toConnect.size > CONNECT_SLICE ? now + CONNECT_BUDGET_MS : Infinity;
    this.starting = true;
    try {
      for (const member of this.toConnect) {
        if (started >= room || (started > 0 && performance.now() > until)) break;
        member.exitIdle(); // takes it out of the queue
        this.toConnect.delete(member); // a member removed meanwhile leaves the queue too
        started++;
      }
    } finally {
      this.starting = false;
    }
    if (this.toConnect.size === 0) return;
    if (this.pending.size < this.connectPending) {
      this.scheduleConnect(0); // stopped by the slice or the budget
      return;
    }
    // Every place is taken: wait for an attempt to settle, or for the oldest to expire.
    const oldest: number = this.pending.values().next().value!;
    const wait = oldest + this.connectPendingMs - performance.now();
    this.scheduleConnect(wait > 0 ? Math.max(1, wait) : 0);
  }

  /** Runs {@link connectSlice} in this turn's check phase (`delayMs` 0) or after `delayMs`, unless one is due sooner. */
  private scheduleConnect(delayMs: number): void {
    if (this.connectScheduled) {
      if (delayMs > 0 || this.connectTimer === null) return;
      clearTimeout(this.connectTimer); // a place came free: no need to wait for the timer
      this.connectTimer = null;
    }
    this.connectScheduled = true;
    const run = () => {
      this.connectScheduled = false;
      this.connectTimer = null;
      if (!this.destroyed) this.connectSlice();
    };
    if (delayMs === 0) setImmediate(run);
    else this.connectTimer = setTimeout(run, delayMs);
  }

  /** Whether a first slice has started and the rest of the connect queue waits for the ring. */
  private connectPaused(): boolean {
    for (const member of this.members.values()) if (member.started) return true;
    return false;
  }

  /**
   * Children report every connectivity change one by one: 1,000 endpoints arriving mean
   * thousands of reports, and a rebuild over every member for each made the work quadratic
   * (a 1.5 s event-loop stall at 1,000 endpoints). The reports of one turn (the connections
   * that completed in one poll) share one rebuild in the turn's check phase, before any timer
   * or further I/O, so a first READY reaches waiting calls in the turn it happened.
   */
  private scheduleUpdate(): void {
    this.dirty = true;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.dirty) this.calculateAndUpdateState();
    });
  }

  /**
   * Sets the ring of `members` going: nothing when the ring in force (or the one being built)
   * is already theirs, else a new build, which supersedes any other. For up to
   * {@link CONNECT_SLICE} members its first slice runs now, so a small ring is in force before
   * this returns; a larger one starts in the next turn (the turn of a resolver update has the
   * membership to take in) and carries on a slice per turn.
   */
  private startRing(members: ReadonlyMap<string, Member>, vnodes: number): void {
    const ring = this.ring;
    if (sameMembership(members, vnodes, ring.vnodes, ring.size, (key) => {
      const i = ring.indexOf(key);
      return i < 0 ? undefined : ring.members[i].weight;
    })) {
      this.build = null;
      return;
    }
    const build = this.build;
    if (build !== null && sameMembership(members, vnodes, build.vnodes, build.weights.size, (key) => build.weights.get(key))) return;
    const list: RingMember[] = [...members.values()].map((m) => ({ key: m.key, weight: m.weight }));
    this.build = { ring: null, members: list, vnodes, weights: new Map(list.map((m) => [m.key, m.weight])) };
    if (list.length <= CONNECT_SLICE) this.buildSlice(false);
    else this.scheduleBuildSlice(true);
  }

  /**
   * Runs the next build slice in this turn's check phase, or (`nextTurn`) in the next turn's
   * timers phase: a resolver update arrives in a poll phase, whose check phase would add the
   * slice to the same turn.
   */
  private scheduleBuildSlice(nextTurn = false): void {
    if (this.buildScheduled) return;
    this.buildScheduled = true;
    const run = () => {
      this.buildScheduled = false;
      this.buildSlice(true);
    };
    if (nextTurn) setTimeout(run, 0);
    else setImmediate(run);
  }

  /** One slice of the ring build; once complete, the new ring goes in force (and is published if `publish`). */
  private buildSlice(publish: boolean): void {
    const build = this.build;
    if (build === null || this.destroyed) return;
    const deadline = performance.now() + this.ringSliceMs;
    build.ring ??= new RingBuild(build.members, build.vnodes, this.vnodeHashes);
    if (!build.ring.step(deadline)) {
      this.scheduleBuildSlice();
      return;
    }
    this.build = null;
    this.ring = new HashRing(build.ring);
    this.vnodeHashes.retain(this.members);
    trace(`ring of ${this.ring.size} members in force (${this.ring.points} points)`);
    if (!publish) return; // inside updateAddressList, which publishes and has run a connect slice
    this.calculateAndUpdateState();
    if (this.toConnect.size > 0 && !this.connectScheduled) this.connectSlice();
  }

  private calculateAndUpdateState(): void {
    if (this.updatesPaused || this.destroyed || this.settings === undefined) return;
    this.dirty = false;
    let connecting = 0;
    let failing = 0;
    for (const member of this.members.values()) {
      const state = member.leaf?.getConnectivityState() ?? ConnectivityState.IDLE;
      member.publishedReady = false;
      if (state === ConnectivityState.CONNECTING || !member.started) connecting++;
      else if (state === ConnectivityState.TRANSIENT_FAILURE) failing++;
    }
    // While a new ring is built, the ring in force routes: members it does not name yet wait
    // for it, and members that have left count as failed.
    let ready = 0;
    const pickerMembers: PickerMember[] = this.ring.members.map((rm) => {
      const member = this.members.get(rm.key);
      if (member === undefined) return GONE;
      const state = member.leaf?.getConnectivityState() ?? ConnectivityState.IDLE;
      const isReady = state === ConnectivityState.READY;
      member.publishedReady = isReady;
      if (isReady) ready++;
      return {
        picker: isReady ? member.leaf!.getPicker() : null,
        state,
        exitIdle: member.exitIdle,
        load: member.load,
        observer: member.observer,
      };
    });
    if (ready > 0) {
      const { header, boundedLoad } = this.settings;
      const cursor = this.currentPicker?.cursor ?? Math.floor(Math.random() * ready);
      const rule = this.traffic?.rule;
      const selector =
        rule === undefined
          ? undefined
          : new TrafficSelector(
              rule,
              this.ring.members.map((rm, i) => ({
                info: this.instances?.get(rm.key),
                ready: pickerMembers[i].picker !== null,
                connecting: pickerMembers[i].state === ConnectivityState.CONNECTING || pickerMembers[i].state === ConnectivityState.IDLE,
              })),
              this.zone,
            );
      this.updateState(ConnectivityState.READY, new ConsistentHashPicker(this.ring, pickerMembers, header, boundedLoad, this.book, cursor, selector), null);
    } else if (connecting > 0 || this.build !== null) {
      // With no READY member in the ring in force, calls wait for the ring being built.
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (failing > 0) {
      const message = `${CONSISTENT_HASH_POLICY}: no connection established. Last error: ${this.lastError}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
    } else {
      this.updateState(ConnectivityState.IDLE, new QueuePicker(this), null);
    }
    // Keep every member connected, so a key whose owner fails has a READY successor at
    // once. This cannot live in the child's updateState callback: it does not say which
    // child changed. Members not yet started are the connect queue's.
    for (const member of this.members.values()) {
      if (member.leaf !== null && member.leaf.getConnectivityState() === ConnectivityState.IDLE) member.leaf.exitIdle();
    }
  }

  private updateState(state: ConnectivityState, picker: Picker, errorMessage: string | null): void {
    trace(`${ConnectivityState[this.currentState]} -> ${ConnectivityState[state]}`);
    this.currentState = state;
    this.currentPicker = picker instanceof ConsistentHashPicker ? picker : null;
    this.channelControlHelper.updateState(state, picker, errorMessage);
  }
}

/**
 * Registers `consistent_hash` with grpc-js. Call once before creating a channel whose
 * service config names it; repeating the call is harmless.
 */
export function setup(): void {
  registerLoadBalancerType(CONSISTENT_HASH_POLICY, ConsistentHashLoadBalancer, ConsistentHashLoadBalancingConfig);
}

/** Whether `members` (with `vnodes`) is the membership a ring of `size` members and `ringVnodes` was built for. */
function sameMembership(
  members: ReadonlyMap<string, Member>,
  vnodes: number,
  ringVnodes: number,
  size: number,
  weightOf: (key: string) => number | undefined,
): boolean {
  if (ringVnodes !== vnodes || size !== members.size) return false;
  for (const [key, member] of members) if (weightOf(key) !== member.weight) return false;
  return true;
}
