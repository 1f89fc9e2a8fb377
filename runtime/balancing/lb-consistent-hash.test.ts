import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { HashRing } from "./hash-ring";
import { INSTANCES_ATTRIBUTE, type InstanceInfo } from "./instances";
import {
  CONNECT_PENDING,
  CONNECT_SLICE,
  CONSISTENT_HASH_POLICY,
  ConsistentHashLoadBalancer,
  ConsistentHashLoadBalancingConfig,
  DEFAULT_HASH_HEADER,
  endpointKey,
  setup,
} from "./lb-consistent-hash";

const State = grpc.connectivityState;
const { PickResultType, statusOrFromValue, statusOrFromError } = grpc.experimental;

type StateListener = experimental.ConnectivityStateListener;

/** A subchannel whose connectivity the test drives by hand. */
class FakeSubchannel {
  state: grpc.connectivityState = State.IDLE;
  refs = 0;
  private readonly listeners = new Set<StateListener>();
  constructor(readonly address: string) {}

  set(state: grpc.connectivityState, error?: string): void {
    const previous = this.state;
    if (previous === state) return;
    this.state = state;
    for (const listener of [...this.listeners]) listener(this.asInterface(), previous, state, 0, error);
  }
  asInterface(): experimental.SubchannelInterface {
    return this as unknown as experimental.SubchannelInterface;
  }
  getConnectivityState() {
    return this.state;
  }
  addConnectivityStateListener(listener: StateListener) {
    this.listeners.add(listener);
  }
  removeConnectivityStateListener(listener: StateListener) {
    this.listeners.delete(listener);
  }
  startConnecting() {
    if (this.state === State.IDLE) this.set(State.CONNECTING);
  }
  getAddress() {
    return this.address;
  }
  throttleKeepalive() {}
  ref() {
    this.refs++;
  }
  unref() {
    this.refs--;
  }
  getChannelzRef() {
    return { kind: "subchannel", id: 0, name: this.address };
  }
  isHealthy() {
    return true;
  }
  addHealthStateWatcher() {}
  removeHealthStateWatcher() {}
  addDataWatcher() {}
  getRealSubchannel() {
    return this;
  }
  realSubchannelEquals(other: unknown) {
    return other === this;
  }
}

/** A channel stand-in: hands out one fake subchannel per address (like the subchannel pool) and records what the policy reports. */
class FakeHelper implements experimental.ChannelControlHelper {
  readonly subchannels = new Map<string, FakeSubchannel>();
  state: grpc.connectivityState = State.IDLE;
  picker: experimental.Picker | null = null;
  errorMessage: string | null = null;
  reresolutions = 0;
  /** Pickers published so far. */
  updates = 0;

  createSubchannel(address: experimental.SubchannelAddress): experimental.SubchannelInterface {
    const key = grpc.experimental.subchannelAddressToString(address);
    let sub = this.subchannels.get(key);
    if (sub === undefined) this.subchannels.set(key, (sub = new FakeSubchannel(key)));
    return sub.asInterface();
  }
  updateState(state: grpc.connectivityState, picker: experimental.Picker, errorMessage: string | null): void {
    this.state = state;
    this.picker = picker;
    this.errorMessage = errorMessage;
    this.updates++;
  }
  requestReresolution(): void {
    this.reresolutions++;
  }
  addChannelzChild(): void {}
  removeChannelzChild(): void {}

  sub(address: string): FakeSubchannel {
    const sub = this.subchannels.get(address);
    if (sub === undefined) throw new Error(`no subchannel for ${address}`);
    return sub;
  }
}

const addresses = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `10.0.0.${from + i}:50051`);
/** `n` distinct addresses, past the 254 of one /24. */
const manyAddresses = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${Math.floor(i / 200)}.${1 + (i % 200)}:50051`);
const endpointsOf = (list: readonly string[]): experimental.Endpoint[] =>
  list.map((a) => {
    const [host, port] = a.split(":");
    return { addresses: [{ host, port: Number(port) }] };
  });

function instanceTable(weights: Record<string, number>): Map<string, InstanceInfo> {
  const table = new Map<string, InstanceInfo>();
  for (const [address, weight] of Object.entries(weights)) {
    table.set(address, { id: address, service: "svc", address, version: "1", zone: "", weight, metadata: {}, startedAt: 0 });
  }
  return table;
}

function configOf(json: object = {}) {
  return ConsistentHashLoadBalancingConfig.createFromJson(json);
}

/**
 * A policy over `list`. Its ring builds in one go unless `ringSliceMs` says otherwise (0: one
 * small chunk per turn, so a build is sure to span turns whatever the machine's speed).
 */
function start(list: readonly string[], json: object = {}, options: grpc.ChannelOptions = {}, ringSliceMs = Infinity, connectPendingMs = 0) {
  const helper = new FakeHelper();
  const lb = new ConsistentHashLoadBalancer(helper, ringSliceMs, CONNECT_PENDING, connectPendingMs);
  lb.updateAddressList(statusOrFromValue(endpointsOf(list)), configOf(json), options, "");
  return { helper, lb };
}

/**
 * One event-loop turn: the policy rebuilds its picker once per turn in which children reported,
 * in the turn's check phase, and starts waiting members a slice per turn.
 */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Turns until `done()`, for at most `ms` of wall time: a bound in turns alone fails on a fast
 * machine, where hundreds of turns pass before a 1 ms timer (a ring build, a freed place) fires.
 */
async function turnsUntil(done: () => boolean, ms = 5_000): Promise<void> {
  const until = performance.now() + ms;
  while (!done() && performance.now() < until) await flush();
}

/**
 * Until the policy's ring is in force: a ring of more than {@link CONNECT_SLICE} members starts
 * building in the turn after the resolver update, in its timers phase.
 */
async function ringInForce(lb: ConsistentHashLoadBalancer): Promise<void> {
  for (let i = 0; (lb as unknown as { build: unknown }).build !== null; i++) {
    expect(i).to.be.below(1_000);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Moves a subchannel to `state` and lets the policy publish the result. */
async function set(sub: FakeSubchannel, state: grpc.connectivityState, error?: string): Promise<void> {
  sub.set(state, error);
  await flush();
}

async function readyAll(helper: FakeHelper): Promise<void> {
  for (const sub of helper.subchannels.values()) sub.set(State.READY);
  await flush();
}

function pick(helper: FakeHelper, key?: string, header = DEFAULT_HASH_HEADER): experimental.PickResult {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set(header, key);
  return helper.picker!.pick({ metadata, extraPickInfo: {} });
}

function pickedAddress(helper: FakeHelper, key?: string, header?: string): string {
  const result = pick(helper, key, header);
  expect(result.pickResultType).to.equal(PickResultType.COMPLETE);
  return result.subchannel!.getAddress();
}

const keys = (n: number, prefix = "k") => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe("lb-consistent-hash: config", () => {
  it("fills in defaults and round-trips through toJsonObject", () => {
    const config = configOf({});
    expect(config.getLoadBalancerName()).to.equal(CONSISTENT_HASH_POLICY);
    expect(config.settings).to.deep.equal({ header: DEFAULT_HASH_HEADER, vnodes: 1000, boundedLoad: undefined });
    const full = configOf({ header: "X-User", vnodes: 300, boundedLoad: 1.5 });
    expect(full.toJsonObject()).to.deep.equal({ consistent_hash: { header: "x-user", vnodes: 300, boundedLoad: 1.5 } });
    expect(configOf((full.toJsonObject() as Record<string, object>).consistent_hash).settings).to.deep.equal(full.settings);
  });

  it("rejects bad fields with errors naming them", () => {
    expect(() => configOf({ header: 5 })).to.throw(TypeError, /header must be a string/);
    expect(() => configOf({ header: "bad header" })).to.throw(RangeError, /header/);
    expect(() => configOf({ header: "grpc-timeout" })).to.throw(RangeError, /reserved grpc-/);
    expect(() => configOf({ header: "x-key-bin" })).to.throw(RangeError, /-bin/);
    expect(() => configOf({ vnodes: 0 })).to.throw(RangeError, /vnodes/);
    expect(() => configOf({ vnodes: "9" })).to.throw(TypeError, /vnodes/);
    expect(() => configOf({ boundedLoad: 1 })).to.throw(RangeError, /greater than 1/);
    expect(() => configOf({ boundedLoad: Infinity })).to.throw(RangeError, /boundedLoad/);
    expect(() => ConsistentHashLoadBalancingConfig.createFromJson([])).to.throw(TypeError, /expected an object/);
  });

  it("registers with grpc-js under consistent_hash", () => {
    setup();
    expect(grpc.experimental.isLoadBalancerNameRegistered(CONSISTENT_HASH_POLICY)).to.equal(true);
    const parsed = grpc.experimental.parseLoadBalancingConfig({ consistent_hash: { vnodes: 50 } });
    expect(parsed).to.be.instanceOf(ConsistentHashLoadBalancingConfig);
    expect(() => grpc.experimental.parseLoadBalancingConfig({ consistent_hash: { vnodes: -1 } })).to.throw(/consistent_hash.*vnodes/);
  });
});

describe("lb-consistent-hash: picking", () => {
  it("sends the same key to the same member on 1,000 picks, the member the ring names", async () => {
    const list = addresses(10);
    const { helper } = start(list);
    await readyAll(helper);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    const first = pickedAddress(helper, "user-42");
    expect(first).to.equal(ring.owner("user-42")!.key);
    for (let i = 0; i < 1000; i++) expect(pickedAddress(helper, "user-42")).to.equal(first);
  });

  it("reads the key from the configured header", async () => {
    const list = addresses(10);
    const { helper } = start(list, { header: "x-user" });
    await readyAll(helper);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    for (const k of keys(50)) expect(pickedAddress(helper, k, "x-user")).to.equal(ring.owner(k)!.key);
  });

  it("sends a key whose owner is not READY to the next READY member in ring order", async () => {
    const list = addresses(10);
    const { helper } = start(list);
    await readyAll(helper);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    const order = [...ring.walk("user-7")].map((m) => m.key);
    await set(helper.sub(order[0]), State.TRANSIENT_FAILURE, "refused");
    await set(helper.sub(order[1]), State.CONNECTING);
    expect(pickedAddress(helper, "user-7")).to.equal(order[2]);
  });

  it("keeps every key's owner through CONNECTING → TRANSIENT_FAILURE → READY of one member", async () => {
    const list = addresses(10);
    const { helper } = start(list);
    await readyAll(helper);
    const ks = keys(3000);
    const before = ks.map((k) => pickedAddress(helper, k));
    const flapping = list[4];
    const reresolutionsBefore = helper.reresolutions;

    await set(helper.sub(flapping), State.CONNECTING);
    // While its owner connects, a key waits for it (queued) instead of moving.
    for (let i = 0; i < ks.length; i++) {
      if (before[i] === flapping) expect(pick(helper, ks[i]).pickResultType).to.equal(PickResultType.QUEUE);
      else expect(pickedAddress(helper, ks[i])).to.equal(before[i]);
    }
    await set(helper.sub(flapping), State.TRANSIENT_FAILURE, "connection refused");
    expect(helper.state).to.equal(State.READY);
    const during = ks.map((k) => pickedAddress(helper, k));
    await set(helper.sub(flapping), State.READY);
    const after = ks.map((k) => pickedAddress(helper, k));

    expect(after).to.deep.equal(before);
    // While it had failed only its own keys went elsewhere.
    for (let i = 0; i < ks.length; i++) {
      if (before[i] === flapping) expect(during[i]).to.not.equal(flapping);
      else expect(during[i]).to.equal(before[i]);
    }
    expect(before.filter((a) => a === flapping).length).to.be.greaterThan(0);
    expect(helper.reresolutions).to.be.greaterThan(reresolutionsBefore);
  });

  it("spreads calls without a key round-robin over the READY members only", async () => {
    const list = addresses(5);
    const { helper } = start(list);
    await readyAll(helper);
    await set(helper.sub(list[1]), State.TRANSIENT_FAILURE, "down");
    await set(helper.sub(list[3]), State.CONNECTING);
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const a = pickedAddress(helper);
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).to.deep.equal([list[0], list[2], list[4]].sort());
    expect([...counts.values()]).to.deep.equal([100, 100, 100]);
  });

  it("gives an instance of weight 2 about twice the keys, taking weights from the resolver's instance table", async () => {
    const list = addresses(4);
    const options = { [INSTANCES_ATTRIBUTE]: instanceTable({ [list[0]]: 2, [list[1]]: 1, [list[2]]: 1 }) }; // list[3] absent: weight 1
    const { helper } = start(list, {}, options);
    await readyAll(helper);
    const counts = new Map<string, number>();
    for (const k of keys(50_000)) {
      const a = pickedAddress(helper, k);
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    const lightMean = (counts.get(list[1])! + counts.get(list[2])! + counts.get(list[3])!) / 3;
    expect(counts.get(list[0])! / lightMean).to.be.within(1.8, 2.2);
  });

  it("keeps members under ceil(c × mean) in-flight calls with bounded load on, even for a hot key", async () => {
    const factor = 1.25;
    const list = addresses(10);
    const { helper } = start(list, { boundedLoad: factor });
    await readyAll(helper);
    const inFlight = new Map<string, number>(list.map((a) => [a, 0]));
    const running: { address: string; end: () => void }[] = [];
    let total = 0;
    let seed = 7;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let worst = 0;
    for (let i = 0; i < 20_000; i++) {
      // Most calls share one key; calls end at random, so load keeps shifting.
      if (running.length > 0 && random() < 0.45) {
        const [call] = running.splice(Math.floor(random() * running.length), 1);
        call.end();
        inFlight.set(call.address, inFlight.get(call.address)! - 1);
        total--;
        continue;
      }
      const result = pick(helper, random() < 0.7 ? "hot" : `k-${i}`);
      const address = result.subchannel!.getAddress();
      result.onCallStarted!();
      inFlight.set(address, inFlight.get(address)! + 1);
      total++;
      running.push({ address, end: () => result.onCallEnded!(grpc.status.OK, "", new grpc.Metadata()) });
      const bound = Math.ceil((factor * total) / list.length);
      expect(inFlight.get(address)).to.be.at.most(bound);
      worst = Math.max(worst, inFlight.get(address)! / bound);
    }
    expect(worst).to.be.greaterThan(0.9); // the bound was actually reached, not merely never approached
  });

  it("counts a call from its pick, so a burst picked before any call starts stays under the bound", async () => {
    const list = addresses(10);
    const { helper } = start(list, { boundedLoad: 1.25 });
    await readyAll(helper);
    // grpc-js starts a picked call only after an asynchronous step: a burst is picked first, started later.
    const burst = Array.from({ length: 400 }, () => pick(helper, "hot").subchannel!.getAddress());
    const counts = new Map<string, number>();
    for (const a of burst) counts.set(a, (counts.get(a) ?? 0) + 1);
    expect(Math.max(...counts.values())).to.be.at.most(Math.ceil((1.25 * 400) / list.length));
    // Picks whose calls never started give their count back on the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pick(helper, "hot").subchannel!.getAddress()).to.equal(burst[0]);
  });

  it("without bounded load, lets a hot key pile onto its owner", async () => {
    const list = addresses(10);
    const { helper } = start(list);
    await readyAll(helper);
    const result = pick(helper, "hot");
    expect(result.onCallStarted).to.equal(null); // no per-call bookkeeping when off
    for (let i = 0; i < 100; i++) expect(pick(helper, "hot").subchannel).to.equal(result.subchannel);
  });
});

describe("lb-consistent-hash: connectivity", () => {
  it("queues picks while members connect and none is READY", () => {
    const { helper } = start(addresses(3));
    expect(helper.state).to.equal(State.CONNECTING);
    expect(pick(helper, "k").pickResultType).to.equal(PickResultType.QUEUE);
  });

  it("is READY while any member is READY", async () => {
    const list = addresses(3);
    const { helper } = start(list);
    await set(helper.sub(list[2]), State.READY);
    expect(helper.state).to.equal(State.READY);
    // Keys owned by the still-connecting members wait for them; keyless calls go to the READY one.
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    for (const k of keys(20)) {
      if (ring.owner(k)!.key === list[2]) expect(pickedAddress(helper, k)).to.equal(list[2]);
      else expect(pick(helper, k).pickResultType).to.equal(PickResultType.QUEUE);
    }
    expect(pickedAddress(helper)).to.equal(list[2]);
    // Once the others have failed, their keys fall over to the READY member.
    await set(helper.sub(list[0]), State.TRANSIENT_FAILURE, "refused");
    await set(helper.sub(list[1]), State.TRANSIENT_FAILURE, "refused");
    for (const k of keys(20)) expect(pickedAddress(helper, k)).to.equal(list[2]);
  });

  it("fails picks with UNAVAILABLE and the last error when every member failed", async () => {
    const list = addresses(2);
    const { helper } = start(list);
    await set(helper.sub(list[0]), State.TRANSIENT_FAILURE, "connect ECONNREFUSED 10.0.0.1:50051");
    await set(helper.sub(list[1]), State.TRANSIENT_FAILURE, "connect ECONNREFUSED 10.0.0.2:50051");
    expect(helper.state).to.equal(State.TRANSIENT_FAILURE);
    const result = pick(helper, "k");
    expect(result.pickResultType).to.equal(PickResultType.TRANSIENT_FAILURE);
    expect(result.status!.code).to.equal(grpc.status.UNAVAILABLE);
    expect(result.status!.details).to.match(/consistent_hash: no connection established.*ECONNREFUSED/);
    expect(helper.reresolutions).to.be.greaterThan(0);
  });

  it("fails with a clear message when the resolver reports no endpoints", () => {
    const { helper } = start([]);
    expect(helper.state).to.equal(State.TRANSIENT_FAILURE);
    expect(pick(helper, "k").status!.details).to.match(/no addresses resolved/);
  });

  it("keeps serving the last membership when a resolution fails", async () => {
    const list = addresses(3);
    const { helper, lb } = start(list);
    await readyAll(helper);
    const owner = pickedAddress(helper, "k");
    const error = { code: grpc.status.UNAVAILABLE, details: "registry unreachable", metadata: new grpc.Metadata() };
    lb.updateAddressList(statusOrFromError(error), configOf(), {}, "");
    expect(helper.state).to.equal(State.READY);
    expect(pickedAddress(helper, "k")).to.equal(owner);
  });

  it("reports a failed first resolution as TRANSIENT_FAILURE", () => {
    const helper = new FakeHelper();
    const lb = new ConsistentHashLoadBalancer(helper);
    const error = { code: grpc.status.UNAVAILABLE, details: "registry unreachable", metadata: new grpc.Metadata() };
    lb.updateAddressList(statusOrFromError(error), configOf(), {}, "");
    expect(helper.state).to.equal(State.TRANSIENT_FAILURE);
    expect(pick(helper, "k").status!.details).to.equal("registry unreachable");
  });

  it("ignores a config meant for another policy", () => {
    const helper = new FakeHelper();
    const lb = new ConsistentHashLoadBalancer(helper);
    const other = grpc.experimental.parseLoadBalancingConfig({ round_robin: {} });
    expect(lb.updateAddressList(statusOrFromValue(endpointsOf(addresses(1))), other, {}, "")).to.equal(false);
  });
});

describe("lb-consistent-hash: membership updates", () => {
  it("keeps connections to members that stay, drops removed ones, and moves few keys", async () => {
    const list = addresses(10);
    const { helper, lb } = start(list);
    await readyAll(helper);
    const ks = keys(10_000);
    const before = ks.map((k) => pickedAddress(helper, k));

    const grown = [...list, ...addresses(1, 11)];
    lb.updateAddressList(statusOrFromValue(endpointsOf(grown)), configOf(), {}, "");
    expect(helper.state).to.equal(State.READY); // the 10 stayed connected through the update
    await set(helper.sub(grown[10]), State.READY);
    const afterAdd = ks.map((k) => pickedAddress(helper, k));
    const movedOnAdd = ks.filter((_, i) => afterAdd[i] !== before[i]).length;
    expect(movedOnAdd / ks.length).to.be.at.most(1.5 / 10);
    for (let i = 0; i < ks.length; i++) if (afterAdd[i] !== before[i]) expect(afterAdd[i]).to.equal(grown[10]);

    const shrunk = grown.filter((a) => a !== list[0]);
    lb.updateAddressList(statusOrFromValue(endpointsOf(shrunk)), configOf(), {}, "");
    const afterRemove = ks.map((k) => pickedAddress(helper, k));
    const movedOnRemove = ks.filter((_, i) => afterRemove[i] !== afterAdd[i]).length;
    expect(movedOnRemove / ks.length).to.be.at.most(1.5 / 10);
    expect(afterRemove).to.not.include(list[0]);
    expect(helper.sub(list[0]).refs).to.equal(0); // released by the destroyed child
  });

  it("rebuilds the ring when a weight changes, not on an identical update", async () => {
    const list = addresses(3);
    const { helper, lb } = start(list);
    await readyAll(helper);
    const ks = keys(3000);
    const owners = () => ks.map((k) => pickedAddress(helper, k));
    const before = owners();
    lb.updateAddressList(statusOrFromValue(endpointsOf(list)), configOf(), {}, "");
    expect(owners()).to.deep.equal(before);
    const heavier = { [INSTANCES_ATTRIBUTE]: instanceTable({ [list[0]]: 3 }) };
    lb.updateAddressList(statusOrFromValue(endpointsOf(list)), configOf(), heavier, "");
    const share = owners().filter((a) => a === list[0]).length / ks.length;
    expect(share).to.be.within(0.5, 0.7); // 3 / (3 + 1 + 1)
  });

  it("releases every subchannel on destroy", async () => {
    const list = addresses(3);
    const { helper, lb } = start(list);
    await readyAll(helper);
    lb.destroy();
    for (const a of list) expect(helper.sub(a).refs).to.equal(0);
  });
});

describe("lb-consistent-hash: pacing at scale", () => {
  it("publishes one picker for all the child reports of one event-loop turn", async () => {
    const list = addresses(CONNECT_PENDING);
    const { helper } = start(list);
    expect(helper.subchannels.size).to.equal(list.length);
    const before = helper.updates;
    for (const sub of helper.subchannels.values()) sub.set(State.READY); // all the reports in one turn
    expect(helper.updates).to.equal(before); // nothing yet: the turn is not over
    await flush();
    expect(helper.updates).to.equal(before + 1);
    expect(helper.state).to.equal(State.READY);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    for (const k of keys(50)) expect(pickedAddress(helper, k)).to.equal(ring.owner(k)!.key);
  });

  it(`starts at most ${CONNECT_SLICE} new members connecting per event-loop turn, and reports CONNECTING meanwhile`, async () => {
    const n = 2 * CONNECT_SLICE + 20;
    const { helper, lb } = start(manyAddresses(n));
    expect(helper.subchannels.size).to.be.within(1, CONNECT_SLICE);
    expect(helper.state).to.equal(State.CONNECTING);
    await ringInForce(lb); // until then, the queue waits for the ring
    // Each turn starts some (a time budget may stop a turn early), never more than a slice.
    for (let turns = 0; helper.subchannels.size < n; turns++) {
      expect(turns).to.be.below(n);
      const before = helper.subchannels.size;
      await flush();
      expect(helper.subchannels.size - before).to.be.within(1, CONNECT_SLICE);
    }
    await flush();
    for (const sub of helper.subchannels.values()) expect(sub.state).to.equal(State.CONNECTING);
    expect(helper.state).to.equal(State.CONNECTING);
  });

  it("makes a member's child only when the member leaves the queue", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list);
    const members = () => [...(lb as unknown as { members: Map<string, { leaf: unknown; started: boolean }> }).members.values()];
    const made = () => members().filter((m) => m.leaf !== null).length;
    expect(made()).to.equal(helper.subchannels.size);
    expect(made()).to.be.below(list.length);
    for (const m of members()) expect(m.leaf !== null).to.equal(m.started);
    await turnsUntil(() => helper.subchannels.size >= list.length);
    expect(made()).to.equal(list.length);
  });

  it("leaves waiting members to the queue when a queued call asks the policy to exit IDLE", async () => {
    const n = 3 * CONNECT_SLICE;
    const list = manyAddresses(n);
    const { helper } = start(list);
    const started = helper.subchannels.size;
    expect(started).to.be.within(1, CONNECT_SLICE);
    expect(pick(helper, "k").pickResultType).to.equal(PickResultType.QUEUE); // the QueuePicker calls exitIdle on the next tick
    await new Promise((resolve) => process.nextTick(resolve));
    await new Promise((resolve) => process.nextTick(resolve));
    expect(helper.subchannels.size).to.equal(started);
  });

  it("starts a waiting member at once when a call's key belongs to it", async () => {
    const n = 3 * CONNECT_SLICE;
    const list = manyAddresses(n);
    const { helper, lb } = start(list);
    await ringInForce(lb);
    await set(helper.sub(list[0]), State.READY); // one turn: the next slice has started too
    expect(helper.state).to.equal(State.READY);
    const waiting = new Set(list.filter((a) => !helper.subchannels.has(a)));
    expect(waiting.size).to.be.at.least(n - 2 * CONNECT_SLICE);
    const started = helper.subchannels.size;
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    const key = keys(10_000).find((k) => waiting.has(ring.owner(k)!.key))!;
    const owner = ring.owner(key)!.key;
    expect(pick(helper, key).pickResultType).to.equal(PickResultType.QUEUE); // waits for its owner, as for any connecting owner
    await new Promise((resolve) => process.nextTick(resolve));
    expect(helper.sub(owner).state).to.equal(State.CONNECTING);
    expect(helper.subchannels.size).to.equal(started + 1);
  });

  it("never connects a waiting member that a later update removed", async () => {
    const n = 3 * CONNECT_SLICE;
    const list = manyAddresses(n);
    const { helper, lb } = start(list);
    const kept = list.slice(0, CONNECT_SLICE + 10);
    lb.updateAddressList(statusOrFromValue(endpointsOf(kept)), configOf(), {}, "");
    await turnsUntil(() => helper.subchannels.size >= kept.length);
    // And a few more turns and timers, in which nothing else may start.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect([...helper.subchannels.keys()].sort()).to.deep.equal([...kept].sort());
  });

  it("asks the resolver to look again when a connection is lost, not when new members start connecting", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list.slice(0, 3));
    await readyAll(helper);
    const before = helper.reresolutions;
    lb.updateAddressList(statusOrFromValue(endpointsOf(list)), configOf(), {}, "");
    await turnsUntil(() => helper.subchannels.size >= list.length);
    expect(helper.subchannels.size).to.equal(list.length);
    expect(helper.reresolutions).to.equal(before);
    await set(helper.sub(list[0]), State.IDLE);
    expect(helper.reresolutions).to.be.greaterThan(before);
  });

  it("replaces the picker at once when a READY member leaves READY, so no pick gets its subchannel meanwhile", async () => {
    const list = addresses(3);
    const { helper } = start(list);
    await readyAll(helper);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    const owned = keys(200).filter((k) => ring.owner(k)!.key === list[0]);
    expect(owned.length).to.be.greaterThan(0);
    helper.sub(list[0]).set(State.IDLE); // no turn passes: grpc-js re-picks in microtasks
    for (const k of owned) expect(pick(helper, k).pickResultType).to.equal(PickResultType.QUEUE);
    expect(pickedAddress(helper)).to.not.equal(list[0]);
  });

  it("publishes nothing for the reports of the turn in which it is destroyed", async () => {
    const list = addresses(5);
    const { helper, lb } = start(list);
    const before = helper.updates;
    helper.sub(list[0]).set(State.READY);
    lb.destroy();
    await flush();
    expect(helper.updates).to.equal(before);
    expect(helper.state).to.equal(State.CONNECTING);
  });

  it("ignores a child report that arrives between destroy and the end of the turn", async () => {
    const list = addresses(3);
    const { helper, lb } = start(list);
    await readyAll(helper);
    const before = { updates: helper.updates, reresolutions: helper.reresolutions };
    // pick_first drops its listeners on destroy, so a late report can only come through the
    // helper the policy hands a child; play one where that helper delivers it.
    const internals = lb as unknown as { members: Map<string, unknown>; onChildState(member: unknown, state: grpc.connectivityState, error: string | null): void };
    const member = internals.members.get(list[1]);
    expect(member).to.not.equal(undefined);
    lb.destroy();
    internals.onChildState(member, State.TRANSIENT_FAILURE, "late");
    await flush();
    expect({ updates: helper.updates, reresolutions: helper.reresolutions }).to.deep.equal(before);
    expect(helper.state).to.equal(State.READY);
  });

  it("stops starting waiting members once destroyed", async () => {
    const n = 3 * CONNECT_SLICE;
    const list = manyAddresses(n);
    const { helper, lb } = start(list);
    const started = helper.subchannels.size;
    expect(started).to.be.below(n);
    lb.destroy();
    for (let i = 0; i < 4; i++) await flush();
    expect(helper.subchannels.size).to.equal(started);
    for (const sub of helper.subchannels.values()) expect(sub.refs).to.equal(0);
  });
});

describe("lb-consistent-hash: connections pending at once", () => {
  const connecting = (helper: FakeHelper) => [...helper.subchannels.values()].filter((sub) => sub.state === State.CONNECTING);
  /** Turns enough for the queue to start whatever it may start now. */
  const turns = async (n = 5) => {
    for (let i = 0; i < n; i++) await flush();
  };
  /** Turns until `done` holds (a busy machine may stop a slice early on its time budget). */
  const until = async (done: () => boolean) => {
    for (let i = 0; i < 1_000 && !done(); i++) await flush();
    expect(done()).to.equal(true);
  };

  it(`keeps at most ${CONNECT_PENDING} members connecting at once, and starts the next as one settles`, async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list, {}, {}, Infinity, 60_000);
    await ringInForce(lb);
    await until(() => helper.subchannels.size >= CONNECT_PENDING);
    await turns();
    expect(helper.subchannels.size).to.equal(CONNECT_PENDING);
    expect(connecting(helper).length).to.equal(CONNECT_PENDING);
    // Five connect and two fail in one turn: seven places come free, and seven more start.
    const settling = connecting(helper).slice(0, 7);
    for (const sub of settling.slice(0, 5)) sub.set(State.READY);
    for (const sub of settling.slice(5)) sub.set(State.TRANSIENT_FAILURE, "refused");
    await until(() => helper.subchannels.size >= CONNECT_PENDING + 7);
    await turns();
    expect(helper.subchannels.size).to.equal(CONNECT_PENDING + 7);
    expect(connecting(helper).length).to.equal(CONNECT_PENDING);
    // And so on until every member has started, never more than the limit connecting at once.
    for (let round = 0; helper.subchannels.size < list.length; round++) {
      expect(round).to.be.below(list.length);
      const sub = connecting(helper)[0];
      await set(sub, State.READY);
      expect(connecting(helper).length).to.be.at.most(CONNECT_PENDING);
    }
    expect(helper.subchannels.size).to.equal(list.length);
    expect(helper.state).to.equal(State.READY);
  });

  it("gives the place of an attempt that has not settled in time to the next member", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list, {}, {}, Infinity, 50);
    await ringInForce(lb);
    await until(() => helper.subchannels.size >= CONNECT_PENDING);
    const before = helper.subchannels.size;
    expect(before).to.be.below(list.length);
    // Nothing settles, yet the attempts expire and the rest of the queue starts.
    for (let i = 0; i < 500 && helper.subchannels.size < list.length; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(helper.subchannels.size).to.equal(list.length);
    expect(connecting(helper).length).to.equal(list.length);
  });

  it("starts the member a call's key needs even with every place taken", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list, {}, {}, Infinity, 60_000);
    await ringInForce(lb);
    await until(() => helper.subchannels.size >= CONNECT_PENDING);
    await set(connecting(helper)[0], State.READY);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    const key = keys(10_000).find((k) => !helper.subchannels.has(ring.owner(k)!.key))!;
    expect(pick(helper, key).pickResultType).to.equal(PickResultType.QUEUE);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(helper.sub(ring.owner(key)!.key).state).to.equal(State.CONNECTING);
  });

  it("stops waiting for places once destroyed", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list, {}, {}, Infinity, 20);
    await ringInForce(lb);
    await turns();
    const started = helper.subchannels.size;
    lb.destroy();
    await new Promise((resolve) => setTimeout(resolve, 60));
    await turns();
    expect(helper.subchannels.size).to.equal(started);
  });

  it("builds the ring of a large first resolution from the next turn, and routes by it once complete", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list);
    const internals = lb as unknown as { ring: HashRing; build: unknown };
    expect(internals.build).to.not.equal(null);
    expect(internals.ring.size).to.equal(0);
    await ringInForce(lb);
    await readyAll(helper);
    await turns();
    await readyAll(helper);
    const ring = new HashRing(list.map((key) => ({ key, weight: 1 })));
    for (const k of keys(200)) expect(pickedAddress(helper, k)).to.equal(ring.owner(k)!.key);
  });

  it("keys members by the address string grpc-js prints for them", () => {
    const of = (host: string, port: number) => endpointKey({ addresses: [{ host, port }] });
    for (const [host, port] of [
      ["10.0.0.1", 50051],
      ["::1", 443],
      ["fe80::1%eth0", 8080],
      ["2001:db8::7", 1],
      ["localhost", 80],
    ] as const) {
      expect(of(host, port)).to.equal(grpc.experimental.subchannelAddressToString({ host, port }));
    }
    expect(endpointKey({ addresses: [{ path: "/tmp/sock" }] })).to.equal("/tmp/sock");
    expect(endpointKey({ addresses: [] })).to.equal(undefined);
  });
});

describe("lb-consistent-hash: the ring built across turns", () => {
  /** The policy's ring in force and the build under way, if any. */
  const internals = (lb: ConsistentHashLoadBalancer) => lb as unknown as { ring: HashRing; build: unknown };

  /** Turns until no ring build is under way (and the policy has published for it). */
  async function untilBuilt(lb: ConsistentHashLoadBalancer): Promise<number> {
    let turns = 0;
    while (internals(lb).build !== null) {
      expect(++turns).to.be.below(10_000);
      await flush();
    }
    return turns;
  }

  const ringOf = (list: readonly string[]) => new HashRing(list.map((key) => ({ key, weight: 1 })));

  it("queues calls on a first resolution until the ring is complete, then serves them by it", async () => {
    const list = addresses(20);
    const { helper, lb } = start(list, {}, {}, 0);
    for (const sub of helper.subchannels.values()) sub.set(State.READY); // every member connects in the first turn
    await flush();
    expect(internals(lb).build).to.not.equal(null);
    expect(helper.state).to.equal(State.CONNECTING);
    expect(pick(helper, "k-1").pickResultType).to.equal(PickResultType.QUEUE);
    expect(pick(helper).pickResultType).to.equal(PickResultType.QUEUE);
    expect(await untilBuilt(lb)).to.be.greaterThan(1);
    expect(helper.state).to.equal(State.READY);
    const ring = ringOf(list);
    for (const k of keys(100)) expect(pickedAddress(helper, k)).to.equal(ring.owner(k)!.key);
  });

  it("on a first resolution, starts one connect slice and then lets the queue wait for the ring", async () => {
    const list = manyAddresses(3 * CONNECT_SLICE);
    const { helper, lb } = start(list, {}, {}, 0);
    const started = helper.subchannels.size;
    expect(started).to.be.within(1, CONNECT_SLICE);
    for (let i = 0; i < 5; i++) await flush();
    expect(internals(lb).build).to.not.equal(null);
    expect(helper.subchannels.size).to.equal(started);
    await untilBuilt(lb);
    await turnsUntil(() => helper.subchannels.size >= list.length);
    expect(helper.subchannels.size).to.equal(list.length);
  });

  it("routes by the previous ring while the next is built, new members included only once it is complete", async () => {
    const first = addresses(3);
    const { helper, lb } = start(first, {}, {}, 0);
    await untilBuilt(lb);
    await readyAll(helper);
    const grown = [...first, ...manyAddresses(120).map((x) => x.replace(":50051", ":50053"))];
    lb.updateAddressList(statusOrFromValue(endpointsOf(grown)), configOf(), {}, "");
    const old = ringOf(first);
    let turns = 0;
    while (internals(lb).build !== null) {
      // The newcomers connect meanwhile; keys still go where the old ring says.
      for (const sub of helper.subchannels.values()) sub.set(State.READY);
      await flush();
      if (internals(lb).build === null) break;
      turns++;
      expect(helper.state).to.equal(State.READY);
      for (const k of keys(30)) expect(pickedAddress(helper, k)).to.equal(old.owner(k)!.key);
      for (let i = 0; i < 6; i++) expect(first).to.include(pickedAddress(helper)); // keyless calls too
    }
    expect(turns).to.be.greaterThan(0);
    const ring = ringOf(grown);
    expect(internals(lb).ring.size).to.equal(grown.length);
    for (const k of keys(300)) expect(pickedAddress(helper, k)).to.equal(ring.owner(k)!.key);
  });

  it("sends the keys of a member that left to the next READY member of the previous ring while the next is built", async () => {
    const first = addresses(3);
    const { helper, lb } = start(first, {}, {}, 0);
    await untilBuilt(lb);
    await readyAll(helper);
    const old = ringOf(first);
    const orphaned = keys(300).filter((k) => old.owner(k)!.key === first[2]);
    expect(orphaned.length).to.be.greaterThan(0);
    lb.updateAddressList(statusOrFromValue(endpointsOf([first[0], first[1], ...manyAddresses(50).map((x) => x.replace(":50051", ":50053"))])), configOf(), {}, "");
    expect(internals(lb).build).to.not.equal(null);
    for (const k of orphaned) {
      const next = [...old.walk(k)].map((m) => m.key).find((a) => a !== first[2]);
      expect(pickedAddress(helper, k)).to.equal(next);
    }
  });

  it("lets a membership change during a build supersede it: the superseded ring never goes in force", async () => {
    const first = addresses(3);
    const { helper, lb } = start(first, {}, {}, 0);
    await untilBuilt(lb);
    await readyAll(helper);
    const a = manyAddresses(150);
    const b = [...first, ...manyAddresses(90).map((x) => x.replace(":50051", ":50052"))];
    lb.updateAddressList(statusOrFromValue(endpointsOf(a)), configOf(), {}, "");
    await flush();
    await flush();
    expect(internals(lb).build).to.not.equal(null);
    lb.updateAddressList(statusOrFromValue(endpointsOf(b)), configOf(), {}, "");
    const sizes = new Set<number>();
    while (internals(lb).build !== null) {
      sizes.add(internals(lb).ring.size);
      await flush();
    }
    expect([...sizes]).to.deep.equal([3]);
    expect(Array.from(internals(lb).ring.pointHashes)).to.deep.equal(Array.from(ringOf(b).pointHashes));
  });

  it("drops the build when membership returns to the ring in force", async () => {
    const first = addresses(3);
    const { helper, lb } = start(first, {}, {}, 0);
    await untilBuilt(lb);
    await readyAll(helper);
    const ring = internals(lb).ring;
    lb.updateAddressList(statusOrFromValue(endpointsOf(manyAddresses(100))), configOf(), {}, "");
    expect(internals(lb).build).to.not.equal(null);
    lb.updateAddressList(statusOrFromValue(endpointsOf(first)), configOf(), {}, "");
    expect(internals(lb).build).to.equal(null);
    for (let i = 0; i < 3; i++) await flush();
    expect(internals(lb).ring).to.equal(ring);
  });

  it("stops building on destroy, and publishes nothing for it", async () => {
    const { helper, lb } = start(manyAddresses(200), {}, {}, 0);
    expect(internals(lb).build).to.not.equal(null);
    const before = helper.updates;
    lb.destroy();
    for (let i = 0; i < 20; i++) await flush();
    expect(internals(lb).build).to.equal(null);
    expect(internals(lb).ring.size).to.equal(0);
    expect(helper.updates).to.equal(before);
  });
});

describe("lb-consistent-hash: inside a real grpc-js channel", () => {
  const path = "/test.Echo/Who";
  const identity = (b: Buffer) => b;
  const servers: grpc.Server[] = [];
  const ports: number[] = [];
  let client: grpc.Client;

  before(async () => {
    setup();
    for (let i = 0; i < 3; i++) {
      const server = new grpc.Server();
      const port = await new Promise<number>((resolve, reject) => {
        server.addService(
          { who: { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
          { who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(String(i))) },
        );
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
      });
      servers.push(server);
      ports.push(port);
    }
    const serviceConfig = { loadBalancingConfig: [{ consistent_hash: { header: "x-user", boundedLoad: 1.25 } }] };
    client = new grpc.Client(`ipv4:${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, grpc.credentials.createInsecure(), {
      "grpc.service_config": JSON.stringify(serviceConfig),
    });
  });
  after(() => {
    client?.close();
    for (const s of servers) s.forceShutdown();
  });

  const who = (key?: string) =>
    new Promise<string>((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (key !== undefined) metadata.set("x-user", key);
      client.makeUnaryRequest(path, identity, identity, Buffer.alloc(0), metadata, { deadline: Date.now() + 5000 }, (err, reply) =>
        err ? reject(err) : resolve(reply!.toString()),
      );
    });

  it("routes each key to one server every time and spreads keys over all servers", async () => {
    // Until every server is connected a key may fall over to another; keyless calls go only
    // to READY servers, so seeing all three answer means the ring is fully connected.
    const warm = new Set<string>();
    for (let i = 0; i < 200 && warm.size < 3; i++) warm.add(await who());
    expect(warm.size).to.equal(3);
    const seen = new Set<string>();
    for (const k of keys(30, "user")) {
      const first = await who(k);
      for (let i = 0; i < 5; i++) expect(await who(k)).to.equal(first);
      seen.add(first);
    }
    expect(seen.size).to.equal(3);
  });

  it("answers calls without a key", async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, () => who()));
    expect(new Set(replies).size).to.be.greaterThan(1);
  });
});

describe("lb-consistent-hash: pick cost (measured, not asserted)", () => {
  it("reports nanoseconds per pick", async function () {
    this.timeout(60_000);
    const list = addresses(10);
    const measure = async (json: object, withKey: boolean) => {
      const { helper } = start(list, json);
      await readyAll(helper);
      const picker = helper.picker!;
      const args = Array.from({ length: 1024 }, (_, i) => {
        const metadata = new grpc.Metadata();
        if (withKey) metadata.set(DEFAULT_HASH_HEADER, `user-${i * 7919}`);
        return { metadata, extraPickInfo: {} };
      });
      const run = (n: number) => {
        for (let i = 0; i < n; i++) {
          const r = picker.pick(args[i & 1023]);
          if (r.onCallStarted) {
            r.onCallStarted();
            r.onCallEnded!(0, "", args[0].metadata);
          }
        }
      };
      run(200_000);
      const n = 1_000_000;
      const t0 = process.hrtime.bigint();
      run(n);
      return Number(process.hrtime.bigint() - t0) / n;
    };
    const keyed = await measure({}, true);
    const keyless = await measure({}, false);
    const bounded = await measure({ boundedLoad: 1.25 }, true);
    console.log(`      pick, 10 members × 1000 vnodes: keyed ${keyed.toFixed(0)} ns, keyless ${keyless.toFixed(0)} ns, keyed + bounded load (with start/end hooks) ${bounded.toFixed(0)} ns`);
  });
});
