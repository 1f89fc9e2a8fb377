/**
 * A consistent-hash ring over weighted members, with an optional bounded-load
 * rule. The ring depends only on membership (keys and weights), never on
 * connection state, so a member that reconnects keeps every key it owned.
 */

/** One ring member: `key` is its identity (`host:port`), `weight` scales its share. */
export interface RingMember {
  readonly key: string;
  /** Relative weight, > 0. */
  readonly weight: number;
}

/**
 * Virtual nodes per member of mean weight. A member's share of the ring is the sum of
 * its vnode arcs, whose relative spread falls as 1/√vnodes. Measured for 10 equal members
 * over 400 random address sets (100k keys each), peak/mean was: 160 vnodes (ketama)
 * median 1.12, p99 1.24, a quarter of the sets over 1.15; 500: median 1.07, p99 1.13–1.15,
 * now and then a set over 1.15; 1,000: median 1.05, p99 1.10, worst 1.11. So 1,000 keeps
 * the 1.15 budget with margin for any set of addresses, for 10k points (80 KiB) at 10
 * members, a few-ms build and one more comparison per lookup than 500.
 */
export const DEFAULT_VNODES = 1000;

/** Largest accepted `vnodes`: beyond this the ring costs memory and build time for no visible gain. */
export const MAX_VNODES = 10_000;

/**
 * Ceiling on points in one ring. Past ~260 members the vnodes per member shrink to fit, so a
 * rebuild (on each membership change) stays near 60 ms instead of growing without bound.
 */
export const MAX_POINTS = 1 << 18;

/** Default bounded-load factor `c` (Mirrokni, Thorup, Zadimoghaddam 2017). */
export const DEFAULT_BOUNDED_LOAD = 1.25;

/** Most members of one ring. */
const MAX_MEMBERS = 2 ** 20;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3 (x86, 32-bit) of the UTF-8 bytes of `text`. Hashing UTF-8 rather than
 * UTF-16 code units means a client in another language (Go's `murmur3.Sum32([]byte(key))`)
 * can place keys and vnodes exactly where we do.
 */
export function hashString(text: string, seed = 0): number {
  // Keys and addresses are nearly always ASCII, where a char is a byte: take four at a time.
  const n = text.length;
  let h = seed | 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    if ((a | b | c | d) >= 0x80) return hashBytes(utf8(text), seed);
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  let tail = 0;
  for (let shift = 0; i < n; i++, shift += 8) {
    const a = text.charCodeAt(i);
    if (a >= 0x80) return hashBytes(utf8(text), seed);
    tail |= a << shift;
  }
  return finish(h, tail, n);
}

function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, C1);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, C2);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, tail: number, length: number): number {
  if ((length & 3) !== 0) {
    let k = Math.imul(tail, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashBytes(bytes: Uint8Array, seed: number): number {
  const n = bytes.length;
  let h = seed | 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) h = mixBlock(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  let tail = 0;
  for (let shift = 0; i < n; i++, shift += 8) tail |= bytes[i] << shift;
  return finish(h, tail, n);
}

const encoder = new TextEncoder();
function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Writes `hashString(\`${key}#${v}\`)` into `out[v]` for every `v` in `[from, to)`. The vnode
 * names share the member's key, so MurmurHash3's state after the key's whole 4-byte blocks is
 * computed once and each vnode mixes only the rest (a few bytes), with no string built: at
 * 262,144 points this is several times faster than hashing each name from scratch.
 */
export function hashVnodes(key: string, out: Uint32Array, from: number, to: number): void {
  const n = key.length;
  for (let i = 0; i < n; i++) {
    if (key.charCodeAt(i) >= 0x80) {
      for (let v = from; v < to; v++) out[v] = hashString(`${key}#${v}`);
      return;
    }
  }
  let prefix = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    prefix = mixBlock(prefix, key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8) | (key.charCodeAt(i + 2) << 16) | (key.charCodeAt(i + 3) << 24));
  }
  // The key's last 0–3 bytes and the '#', not yet a whole block.
  let carry = 0;
  let carried = 0;
  for (; i < n; i++) carry |= key.charCodeAt(i) << (8 * carried++);
  carry |= 0x23 << (8 * carried++);
  if (carried === 4) {
    prefix = mixBlock(prefix, carry);
    carry = 0;
    carried = 0;
  }
  const digits = new Uint8Array(16);
  for (let v = from; v < to; v++) {
    let count = 0;
    let rest = v;
    do {
      digits[count++] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    } while (rest > 0);
    let h = prefix;
    let block = carry;
    let filled = carried;
    for (let d = count - 1; d >= 0; d--) {
      block |= digits[d] << (8 * filled);
      if (++filled === 4) {
        h = mixBlock(h, block);
        block = 0;
        filled = 0;
      }
    }
    out[v] = finish(h, block, n + 1 + count);
  }
}

/**
 * Most in-flight calls one member may hold under bounded load: `ceil(c × (inFlight + 1) / members)`,
 * where `inFlight` counts calls already running (the new call is the `+ 1`). The sum of all
 * capacities exceeds the calls in flight, so some member always has room.
 */
export function boundedLoadCapacity(factor: number, inFlight: number, members: number): number {
  return Math.ceil((factor * (inFlight + 1)) / Math.max(1, members));
}

/**
 * Each member's virtual-node hashes, kept between ring builds: after a membership change only
 * the newcomers are hashed (hashing is about half of a build; at 262k points, some 28 ms).
 */
export class VnodeHashes {
  private readonly byKey = new Map<string, Uint32Array>();

  /** Hashes of `key#0` … `key#(count-1)` (the array may hold more; read the first `count`). */
  of(key: string, count: number): Uint32Array {
    const known = this.byKey.get(key);
    if (known && known.length >= count) return known;
    const hashes = new Uint32Array(count);
    const from = known ? known.length : 0;
    if (known) hashes.set(known);
    hashVnodes(key, hashes, from, count);
    this.byKey.set(key, hashes);
    return hashes;
  }

  /** The hashes remembered for `key` (`key#0` onwards), without hashing anything. */
  peek(key: string): Uint32Array | undefined {
    return this.byKey.get(key);
  }

  /** Remembers `hashes` (of `key#0` onwards) for `key`, unless more are remembered already. */
  keep(key: string, hashes: Uint32Array): void {
    const known = this.byKey.get(key);
    if (known === undefined || known.length < hashes.length) this.byKey.set(key, hashes);
  }

  /** Forgets every member not in `keys`. */
  retain(keys: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const key of this.byKey.keys()) if (!keys.has(key)) this.byKey.delete(key);
  }

  /** Members remembered. */
  get size(): number {
    return this.byKey.size;
  }
}

/**
 * An immutable consistent-hash ring. Members are indexed in key order (`members[i]`),
 * so the ring is the same whatever order membership arrives in.
 *
 * @example
 *   const ring = new HashRing([{ key: "10.0.0.1:50051", weight: 1 }, { key: "10.0.0.2:50051", weight: 2 }]);
 *   ring.owner("user-42")?.key; // the same member for as long as membership is unchanged
 */
export class HashRing {
  /** Virtual nodes asked of a member of mean weight. */
  readonly vnodes: number;
  /** Members in key order; a member's index here is what the index-based methods speak. */
  readonly members: readonly RingMember[];
  /** Virtual nodes actually placed for each member (same indexing as `members`). */
  readonly vnodesPerMember: readonly number[];
  private readonly hashes: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly index = new Map<string, number>();

  /**
   * @param members Ring members, or a completed {@link RingBuild} to take the ring from.
   *   Duplicate keys are an error; a weight that is not a positive finite number is a `RangeError`.
   * @param vnodes Virtual nodes of a member of mean weight; each member gets
   *   `round(vnodes × weight / meanWeight)`, at least 1 (`vnodes` shrinks when
   *   members × vnodes would pass {@link MAX_POINTS}).
   * @param cache Vnode hashes kept from earlier builds; the ring is the same with or without it.
   */
  constructor(members: readonly RingMember[] | RingBuild, vnodes: number = DEFAULT_VNODES, cache?: VnodeHashes) {
    let build: RingBuild;
    if (members instanceof RingBuild) {
      build = members;
      if (!build.complete) throw new Error("HashRing: the build is not complete");
    } else {
      build = new RingBuild(members, vnodes, cache);
      build.step(Infinity);
    }
    this.vnodes = build.vnodes;
    this.members = build.members;
    this.vnodesPerMember = build.counts;
    for (const [i, member] of build.members.entries()) this.index.set(member.key, i);
    [this.hashes, this.owners] = build.points();
  }

  /** Point hashes in ring order (ascending); do not modify. */
  get pointHashes(): Uint32Array {
    return this.hashes;
  }

  /** The member index owning each point of {@link pointHashes}; do not modify. */
  get pointOwners(): Uint32Array {
    return this.owners;
  }

  /** Number of members. */
  get size(): number {
    return this.members.length;
  }

  /** Number of points (virtual nodes) on the ring. */
  get points(): number {
    return this.hashes.length;
  }

  /** Index of the member with this key, or -1. */
  indexOf(memberKey: string): number {
    return this.index.get(memberKey) ?? -1;
  }

  /** The member that owns `key`, or `undefined` on an empty ring. */
  owner(key: string): RingMember | undefined {
    const i = this.ownerIndex(key);
    return i < 0 ? undefined : this.members[i];
  }

  /** Index of the member that owns `key`, or -1 on an empty ring. */
  ownerIndex(key: string): number {
    return this.hashes.length === 0 ? -1 : this.owners[this.pointAt(hashString(key))];
  }

  /** Distinct members in ring order starting at `key`'s owner: the order to fall over in. */
  *walk(key: string): IterableIterator<RingMember> {
    for (const i of this.walkIndices(hashString(key))) yield this.members[i];
  }

  /** Like {@link walk}, as member indices, from a precomputed `hashString(key)`. */
  *walkIndices(hash: number): IterableIterator<number> {
    const total = this.hashes.length;
    if (total === 0) return;
    const seen = new Uint8Array(this.members.length);
    let left = this.members.length;
    const start = this.pointAt(hash);
    for (let step = 0; step < total && left > 0; step++) {
      const owner = this.owners[(start + step) % total];
      if (seen[owner] === 0) {
        seen[owner] = 1;
        left--;
        yield owner;
      }
    }
  }

  /**
   * The first member, in ring order from `hash`'s owner, that `accept` takes; -1 if none.
   * The owner is tried without allocating, since it is the answer almost every time.
   */
  find(hash: number, accept: (memberIndex: number) => boolean): number {
    if (this.hashes.length === 0) return -1;
    const first = this.owners[this.pointAt(hash)];
    if (accept(first)) return first;
    for (const i of this.walkIndices(hash)) if (i !== first && accept(i)) return i;
    return -1;
  }

  /** Index of the first point at or after `hash`, wrapping past the top of the ring. */
  private pointAt(hash: number): number {
    const hashes = this.hashes;
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === hashes.length ? 0 : lo;
  }
}

/** Points (or buckets) handled between two looks at the clock: well under a millisecond of work. */
const CHUNK = 1024;

const enum Phase {
  Hash,
  Count,
  Sum,
  Scatter,
  Settle,
  Complete,
}

/**
 * A ring built a slice at a time, so that a large membership (262,144 points: some 40 ms of CPU,
 * three times that before the JIT has warmed up) never holds the event loop for long: each
 * {@link step} works until a deadline and picks up where the last one stopped. The result is
 * exactly the ring `new HashRing(members, vnodes)` builds, whatever the slices.
 *
 * The build hashes each member's vnodes (or copies them from a {@link VnodeHashes}), then sorts
 * the points by hash, stably (ties keep member-key order): vnode hashes are uniform, so a
 * counting pass over their top bits, a scatter into about half as many buckets as points, and an
 * insertion sort of each bucket (two points on average) sort them in linear time.
 *
 * @example
 *   const build = new RingBuild(members);
 *   while (!build.step(performance.now() + 5)) await new Promise((r) => setImmediate(r));
 *   const ring = new HashRing(build);
 */
export class RingBuild {
  /** Members in key order. */
  readonly members: readonly RingMember[];
  /** Vnodes of each member (same indexing as `members`). */
  readonly counts: readonly number[];
  /** Total points. */
  readonly total: number;
  private phase = Phase.Hash;
  /** Member being hashed, and how many of its vnodes are done. */
  private member = 0;
  private vnode = 0;
  /** Point (or bucket, in the Sum and Settle phases) the current phase has reached. */
  private at = 0;
  /** Where the current member's points start. */
  private memberAt = 0;
  private readonly hashes: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly shift: number;
  private readonly buckets: number;
  private readonly ends: Uint32Array;
  private next: Uint32Array | undefined;
  private readonly sortedHashes: Uint32Array;
  private readonly sortedOwners: Uint32Array;

  /**
   * Checks the members (as {@link HashRing}'s constructor does, with the same errors) and sets
   * the build up; no hashing happens until {@link step}.
   */
  constructor(
    members: readonly RingMember[],
    readonly vnodes: number = DEFAULT_VNODES,
    private readonly cache?: VnodeHashes,
  ) {
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > MAX_VNODES) {
      throw new RangeError(`HashRing: vnodes must be an integer from 1 to ${MAX_VNODES}, got ${String(vnodes)}`);
    }
    if (members.length > MAX_MEMBERS) throw new RangeError(`HashRing: at most ${MAX_MEMBERS} members, got ${members.length}`);
    for (const member of members) {
      if (typeof member?.key !== "string") throw new TypeError("HashRing: member key must be a string");
    }
    const sorted = [...members].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let weightSum = 0;
    for (const [i, member] of sorted.entries()) {
      if (!(typeof member.weight === "number" && Number.isFinite(member.weight) && member.weight > 0)) {
        throw new RangeError(`HashRing: weight of ${member.key} must be a positive finite number, got ${String(member.weight)}`);
      }
      if (i > 0 && sorted[i - 1].key === member.key) throw new RangeError(`HashRing: duplicate member ${member.key}`);
      weightSum += member.weight;
    }
    this.members = sorted.map((m) => ({ key: m.key, weight: m.weight }));
    const meanWeight = weightSum / Math.max(1, sorted.length);
    const perMean = Math.max(1, Math.min(vnodes, Math.floor(MAX_POINTS / Math.max(1, sorted.length))));
    this.counts = sorted.map((m) => Math.max(1, Math.round((perMean * m.weight) / meanWeight)));
    this.total = this.counts.reduce((a, b) => a + b, 0);
    this.hashes = new Uint32Array(this.total);
    this.owners = new Uint32Array(this.total);
    this.sortedHashes = new Uint32Array(this.total);
    this.sortedOwners = new Uint32Array(this.total);
    let bits = 1;
    while (bits < 24 && 1 << bits < this.total / 2) bits++;
    this.shift = 32 - bits;
    this.buckets = 1 << bits;
    this.ends = new Uint32Array(this.buckets + 1);
    if (this.total === 0) this.phase = Phase.Complete;
  }

  /** Whether the ring is placed: `new HashRing(build)` takes it. */
  get complete(): boolean {
    return this.phase === Phase.Complete;
  }

  /**
   * Works on the build until `clock()` passes `deadline` (always at least one chunk of under a
   * millisecond, so every step makes progress). Returns whether the build is complete.
   */
  step(deadline: number, clock: () => number = performance.now.bind(performance)): boolean {
    while (this.phase !== Phase.Complete) {
      this.chunk();
      if (clock() > deadline) break;
    }
    return this.phase === Phase.Complete;
  }

  /** The sorted points; only once complete. */
  points(): [Uint32Array, Uint32Array] {
    if (this.phase !== Phase.Complete) throw new Error("HashRing: the build is not complete");
    return [this.sortedHashes, this.sortedOwners];
  }

  /** One chunk of the current phase: about {@link CHUNK} points or buckets. */
  private chunk(): void {
    switch (this.phase) {
      case Phase.Hash:
        return this.hashChunk();
      case Phase.Count: {
        const to = Math.min(this.total, this.at + CHUNK);
        const { hashes, ends, shift } = this;
        for (let p = this.at; p < to; p++) ends[(hashes[p] >>> shift) + 1]++;
        return this.advance(to, this.total, Phase.Sum);
      }
      case Phase.Sum: {
        const to = Math.min(this.buckets, this.at + 8 * CHUNK);
        const ends = this.ends;
        for (let b = this.at; b < to; b++) ends[b + 1] += ends[b];
        if (to === this.buckets) this.next = ends.slice(0, this.buckets);
        return this.advance(to, this.buckets, Phase.Scatter);
      }
      case Phase.Scatter: {
        const to = Math.min(this.total, this.at + CHUNK);
        const { hashes, owners, sortedHashes, sortedOwners, shift } = this;
        const next = this.next!;
        for (let p = this.at; p < to; p++) {
          const at = next[hashes[p] >>> shift]++;
          sortedHashes[at] = hashes[p];
          sortedOwners[at] = owners[p];
        }
        return this.advance(to, this.total, Phase.Settle);
      }
      case Phase.Settle: {
        const to = Math.min(this.buckets, this.at + CHUNK);
        const { ends, sortedHashes, sortedOwners } = this;
        for (let b = this.at; b < to; b++) {
          const lo = ends[b];
          const hi = ends[b + 1];
          for (let i = lo + 1; i < hi; i++) {
            const hash = sortedHashes[i];
            const owner = sortedOwners[i];
            let j = i - 1;
            for (; j >= lo && sortedHashes[j] > hash; j--) {
              sortedHashes[j + 1] = sortedHashes[j];
              sortedOwners[j + 1] = sortedOwners[j];
            }
            sortedHashes[j + 1] = hash;
            sortedOwners[j + 1] = owner;
          }
        }
        if (to === this.buckets) this.next = undefined;
        return this.advance(to, this.buckets, Phase.Complete);
      }
    }
  }

  private advance(to: number, end: number, nextPhase: Phase): void {
    this.at = to;
    if (to < end) return;
    this.at = 0;
    this.phase = nextPhase;
  }

  /**
   * Hashes (or copies) up to {@link CHUNK} vnodes, member by member. Points go in by member
   * index, which the stable sort turns into member-key order among equal hashes.
   */
  private hashChunk(): void {
    let budget = CHUNK;
    while (budget > 0 && this.member < this.members.length) {
      const i = this.member;
      const key = this.members[i].key;
      const count = this.counts[i];
      const mine = this.hashes.subarray(this.memberAt, this.memberAt + count);
      if (this.vnode === 0) {
        this.owners.fill(i, this.memberAt, this.memberAt + count);
        const known = this.cache?.peek(key);
        if (known !== undefined) {
          const copied = Math.min(count, known.length);
          mine.set(known.subarray(0, copied));
          this.vnode = copied;
          budget -= copied >> 3; // a copy costs a small fraction of hashing
        }
      }
      const to = Math.min(count, this.vnode + Math.max(0, budget));
      hashVnodes(key, mine, this.vnode, to);
      budget -= to - this.vnode;
      this.vnode = to;
      if (to === count) {
        if (this.cache !== undefined && (this.cache.peek(key)?.length ?? 0) < count) this.cache.keep(key, mine.slice());
        this.member++;
        this.memberAt += count;
        this.vnode = 0;
      }
    }
    if (this.member === this.members.length) this.phase = Phase.Count;
  }
}
