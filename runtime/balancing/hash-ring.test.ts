import { expect } from "chai";
import fc from "fast-check";
import { DEFAULT_VNODES, HashRing, MAX_POINTS, RingBuild, VnodeHashes, boundedLoadCapacity, hashString, hashVnodes, type RingMember } from "./hash-ring";

const members = (n: number, from = 1): RingMember[] =>
  Array.from({ length: n }, (_, i) => ({ key: `10.0.${(from + i) >> 8}.${(from + i) & 255}:50051`, weight: 1 }));

// Deterministic pseudo-random keys, so a failure reproduces.
function keys(count: number, seed = 1): string[] {
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(`user-${x.toString(36)}-${i}`);
  }
  return out;
}

function ownersOf(ring: HashRing, ks: readonly string[]): string[] {
  return ks.map((k) => ring.owner(k)!.key);
}

function countByMember(ring: HashRing, ks: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>(ring.members.map((m) => [m.key, 0]));
  for (const k of ks) {
    const owner = ring.owner(k)!.key;
    counts.set(owner, counts.get(owner)! + 1);
  }
  return counts;
}

describe("hash-ring: hashString", () => {
  it("is MurmurHash3 x86-32 over UTF-8 (published test vectors)", () => {
    expect(hashString("")).to.equal(0);
    expect(hashString("hello")).to.equal(0x248bfa47);
    expect(hashString("The quick brown fox jumps over the lazy dog")).to.equal(0x2e4ff723);
  });

  it("hashes non-ASCII text as its UTF-8 bytes", () => {
    for (const text of ["é", "abcé", "clé-日本-😀", "\ud800 lone surrogate", "user-12345"]) {
      expect(hashString(text), text).to.equal(murmur3Bytes(Buffer.from(text, "utf8")));
    }
  });
});

// A plain byte-at-a-time MurmurHash3 x86-32, to check the string path against.
function murmur3Bytes(bytes: Buffer): number {
  const mix = (k: number) => Math.imul(((Math.imul(k, 0xcc9e2d51) << 15) | (Math.imul(k, 0xcc9e2d51) >>> 17)), 0x1b873593);
  let h = 0;
  const whole = bytes.length - (bytes.length % 4);
  for (let i = 0; i < whole; i += 4) {
    h ^= mix(bytes.readUInt32LE(i));
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let i = whole; i < bytes.length; i++) tail |= bytes[i] << (8 * (i - whole));
  if (bytes.length % 4) h ^= mix(tail);
  h ^= bytes.length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

describe("hash-ring: HashRing", () => {
  it("maps the same key to the same member on every lookup", () => {
    const ring = new HashRing(members(10));
    const first = ring.owner("user-42")!.key;
    for (let i = 0; i < 1000; i++) expect(ring.owner("user-42")!.key).to.equal(first);
  });

  it("is the same ring whatever order membership arrives in", () => {
    const list = members(10);
    const a = new HashRing(list);
    const b = new HashRing([...list].reverse());
    const ks = keys(2000);
    expect(ownersOf(b, ks)).to.deep.equal(ownersOf(a, ks));
  });

  it("keeps 10 equal members within 1.15 of the mean load at the default vnodes", () => {
    const ring = new HashRing(members(10));
    const ks = keys(200_000);
    const counts = [...countByMember(ring, ks).values()];
    const peakOverMean = Math.max(...counts) / (ks.length / 10);
    expect(ring.vnodesPerMember).to.deep.equal(new Array(10).fill(DEFAULT_VNODES));
    expect(peakOverMean).to.be.at.most(1.15);
  });

  it("moves at most 1.5/N of the keys when a member joins, all of them to the newcomer", () => {
    const before = new HashRing(members(10));
    const after = new HashRing(members(11));
    const newcomer = members(11)[10].key;
    const ks = keys(10_000);
    let moved = 0;
    for (const k of ks) {
      const [was, now] = [before.owner(k)!.key, after.owner(k)!.key];
      if (was !== now) {
        moved++;
        expect(now).to.equal(newcomer);
      }
    }
    expect(moved / ks.length).to.be.at.most(1.5 / 10);
    expect(moved).to.be.greaterThan(0);
  });

  it("moves at most 1.5/N of the keys when a member leaves, only the leaver's", () => {
    const before = new HashRing(members(10));
    const leaver = members(10)[3].key;
    const after = new HashRing(members(10).filter((m) => m.key !== leaver));
    const ks = keys(10_000, 7);
    let moved = 0;
    for (const k of ks) {
      const was = before.owner(k)!.key;
      if (was !== after.owner(k)!.key) {
        moved++;
        expect(was).to.equal(leaver);
      }
    }
    expect(moved / ks.length).to.be.at.most(1.5 / 10);
  });

  it("gives a member of weight 2 about twice the keys of a member of weight 1", () => {
    const list = members(5).map((m, i) => (i === 0 ? { ...m, weight: 2 } : m));
    const ring = new HashRing(list);
    const counts = countByMember(ring, keys(60_000, 3));
    const heavy = counts.get(list[0].key)!;
    const light = list.slice(1).map((m) => counts.get(m.key)!);
    const lightMean = light.reduce((a, b) => a + b, 0) / light.length;
    expect(heavy / lightMean).to.be.within(1.8, 2.2);
    const [heavyVnodes, lightVnodes] = [ring.vnodesPerMember[ring.indexOf(list[0].key)], ring.vnodesPerMember[ring.indexOf(list[1].key)]];
    expect(heavyVnodes).to.be.closeTo(2 * lightVnodes, 1);
  });

  it("walks every distinct member once, starting at the owner", () => {
    const ring = new HashRing(members(10));
    const walked = [...ring.walk("user-7")].map((m) => m.key);
    expect(walked[0]).to.equal(ring.owner("user-7")!.key);
    expect(new Set(walked).size).to.equal(10);
    expect(walked).to.have.length(10);
  });

  it("find skips members the caller rejects, in ring order", () => {
    const ring = new HashRing(members(10));
    const order = [...ring.walkIndices(hashString("user-9"))];
    const down = new Set(order.slice(0, 2));
    expect(ring.find(hashString("user-9"), (i) => !down.has(i))).to.equal(order[2]);
    expect(ring.find(hashString("user-9"), () => false)).to.equal(-1);
  });

  it("gives every member at least one vnode however light", () => {
    const ring = new HashRing([{ key: "a:1", weight: 1000 }, { key: "b:1", weight: 0.001 }], 10);
    expect(Math.min(...ring.vnodesPerMember)).to.equal(1);
  });

  it("caps the points of a very large membership", () => {
    const ring = new HashRing(members(600));
    expect(ring.points).to.be.at.most(MAX_POINTS);
    expect(ring.size).to.equal(600);
  });

  it("answers nothing on an empty ring", () => {
    const ring = new HashRing([]);
    expect(ring.owner("k")).to.equal(undefined);
    expect([...ring.walk("k")]).to.deep.equal([]);
    expect(ring.find(1, () => true)).to.equal(-1);
  });

  it("rejects bad vnodes, weights and duplicate members", () => {
    expect(() => new HashRing(members(2), 0)).to.throw(RangeError, /vnodes/);
    expect(() => new HashRing(members(2), 1.5)).to.throw(RangeError, /vnodes/);
    expect(() => new HashRing([{ key: "a:1", weight: 0 }])).to.throw(RangeError, /weight/);
    expect(() => new HashRing([{ key: "a:1", weight: Number.NaN }])).to.throw(RangeError, /weight/);
    expect(() => new HashRing([{ key: "a:1", weight: 1 }, { key: "a:1", weight: 1 }])).to.throw(RangeError, /duplicate/);
  });
});

describe("hash-ring: boundedLoadCapacity", () => {
  it("is ceil(c × (inFlight + 1) / members)", () => {
    expect(boundedLoadCapacity(1.25, 0, 10)).to.equal(1);
    expect(boundedLoadCapacity(1.25, 99, 10)).to.equal(13);
    expect(boundedLoadCapacity(1.25, 100, 4)).to.equal(32);
  });

  it("always leaves room somewhere: capacities sum to more than the calls in flight", () => {
    for (const n of [1, 3, 10]) {
      for (let inFlight = 0; inFlight < 500; inFlight += 7) expect(n * boundedLoadCapacity(1.25, inFlight, n)).to.be.greaterThan(inFlight);
    }
  });
});

describe("VnodeHashes: vnode hashes kept between ring builds", () => {
  const member = (i: number, weight = 1): RingMember => ({ key: `10.1.${i >> 8}.${i & 255}:7000`, weight });
  const keys = Array.from({ length: 3000 }, (_, i) => `k-${i}`);
  const owners = (ring: HashRing) => keys.map((k) => ring.owner(k)?.key);

  it("builds exactly the ring it would build without them, through joins, leaves, weight changes and the point cap", () => {
    const cache = new VnodeHashes();
    const steps: RingMember[][] = [
      [member(1), member(2), member(3)],
      [member(1), member(2), member(3), member(4, 2)],
      [member(2), member(3), member(4, 2)],
      [member(2, 3), member(3), member(4, 2)],
      // Past MAX_POINTS / DEFAULT_VNODES members, every member's vnode count shrinks.
      Array.from({ length: 400 }, (_, i) => member(i)),
      Array.from({ length: 300 }, (_, i) => member(i + 50)),
    ];
    for (const members of steps) {
      const cached = new HashRing(members, DEFAULT_VNODES, cache);
      cache.retain(new Set(members.map((m) => m.key)));
      const plain = new HashRing(members, DEFAULT_VNODES);
      expect(cached.vnodesPerMember).to.deep.equal(plain.vnodesPerMember);
      expect(owners(cached)).to.deep.equal(owners(plain));
      expect(cache.size).to.equal(members.length);
    }
  });

  it("hashes a member once, then only the vnodes it did not have", () => {
    const cache = new VnodeHashes();
    const a = cache.of("10.0.0.1:1", 4);
    expect(Array.from(a)).to.deep.equal([0, 1, 2, 3].map((v) => hashString(`10.0.0.1:1#${v}`)));
    expect(cache.of("10.0.0.1:1", 2)).to.equal(a);
    const b = cache.of("10.0.0.1:1", 6);
    expect(Array.from(b.subarray(0, 4))).to.deep.equal(Array.from(a));
    expect(b[5]).to.equal(hashString("10.0.0.1:1#5"));
    cache.retain(new Set());
    expect(cache.size).to.equal(0);
  });
});

describe("HashRing: the build", () => {
  it("hashes vnode names as hashString would, for keys of every length, non-ASCII keys, and vnode numbers of 1 to 7 digits", () => {
    const names = ["", "a", "ab", "abc", "abcd", "10.0.0.1:50051", "[::1]:50051", "10.0.0.12:1", "héllo:1", "日本:80", "x".repeat(41)];
    for (const key of names) {
      const out = new Uint32Array(1_000_010);
      for (const [from, to] of [[0, 1200], [99_995, 100_005], [999_999, 1_000_010]]) {
        hashVnodes(key, out, from, to);
        for (let v = from; v < to; v++) expect(out[v], `${key}#${v}`).to.equal(hashString(`${key}#${v}`));
      }
    }
  });

  it("orders points by hash, and equal hashes by member key, exactly as a plain sort does", () => {
    // 1,000 members × 262 points: a few 32-bit hashes collide, so the tie order is exercised.
    const list = Array.from({ length: 1000 }, (_, i) => ({ key: `127.0.${i >> 8}.${i & 255}:40000`, weight: 1 + (i % 3) }));
    const ring = new HashRing(list, DEFAULT_VNODES);
    const points: [number, number][] = [];
    ring.members.forEach((m, i) => {
      for (let v = 0; v < ring.vnodesPerMember[i]; v++) points.push([hashString(`${m.key}#${v}`), i]);
    });
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(ring.points).to.equal(points.length);
    let ties = 0;
    const wrong: string[] = [];
    for (let p = 0; p < points.length; p++) {
      if (p > 0 && points[p - 1][0] === points[p][0]) {
        ties++;
        continue;
      }
      const found = ring.find(points[p][0], () => true);
      if (found !== points[p][1] && wrong.length < 5) wrong.push(`hash ${points[p][0]}: member ${found}, expected ${points[p][1]}`);
    }
    expect(wrong, "points owned by the wrong member").to.deep.equal([]);
    expect(ties).to.be.greaterThan(0);
    expect(ring.find(points[points.length - 1][0] + 1, () => true)).to.equal(points[0][1]); // past the top: wraps
  });
});

describe("RingBuild: the ring built a slice at a time", () => {
  /** A clock that moves one tick each time it is read, so where slices end depends on nothing but the budget. */
  const ticking = () => {
    let now = 0;
    return () => now++;
  };

  function sliced(members: readonly RingMember[], vnodes: number, budget: number, cache?: VnodeHashes): { ring: HashRing; steps: number } {
    const build = new RingBuild(members, vnodes, cache);
    const clock = ticking();
    let steps = 1;
    while (!build.step(clock() + budget, clock)) steps++;
    return { ring: new HashRing(build), steps };
  }

  const memberSets = fc.uniqueArray(
    fc.record({
      key: fc.oneof(fc.string({ minLength: 0, maxLength: 12 }), fc.string({ unit: "grapheme", maxLength: 6 }), fc.nat({ max: 65_535 }).map((p) => `10.0.0.1:${p}`)),
      weight: fc.oneof(fc.constant(1), fc.double({ min: 0.01, max: 50, noNaN: true })),
    }),
    { selector: (m) => m.key, minLength: 0, maxLength: 10 },
  );

  it("places exactly the points of a one-shot build, whatever the members, weights, vnodes, slice budget and kept hashes", () => {
    fc.assert(
      fc.property(
        memberSets,
        fc.integer({ min: 1, max: 1500 }),
        fc.integer({ min: 0, max: 40 }),
        fc.option(fc.tuple(fc.integer({ min: 1, max: 4000 }), fc.nat()), { nil: undefined }),
        (members, vnodes, budget, warm) => {
          let cache: VnodeHashes | undefined;
          if (warm !== undefined) {
            // Hashes kept from an earlier build of some of the members, with fewer or more vnodes.
            const [earlierVnodes, pickBits] = warm;
            cache = new VnodeHashes();
            new HashRing(members.filter((_, i) => (pickBits >> i) & 1), earlierVnodes, cache);
          }
          const oneShot = new HashRing(members, vnodes);
          const { ring } = sliced(members, vnodes, budget, cache);
          expect(ring.members).to.deep.equal(oneShot.members);
          expect(ring.vnodesPerMember).to.deep.equal(oneShot.vnodesPerMember);
          expect(Array.from(ring.pointHashes)).to.deep.equal(Array.from(oneShot.pointHashes));
          expect(Array.from(ring.pointOwners)).to.deep.equal(Array.from(oneShot.pointOwners));
          // And the one-shot ring is the plain definition: every vnode's hash, sorted, ties in member order.
          const points: [number, number][] = [];
          oneShot.members.forEach((m, i) => {
            for (let v = 0; v < oneShot.vnodesPerMember[i]; v++) points.push([hashString(`${m.key}#${v}`), i]);
          });
          points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          expect(Array.from(oneShot.pointHashes)).to.deep.equal(points.map((p) => p[0]));
          expect(Array.from(oneShot.pointOwners)).to.deep.equal(points.map((p) => p[1]));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("spreads a large build over many steps when the budget is small, and leaves the kept hashes as a one-shot build does", () => {
    const list = members(300);
    const cache = new VnodeHashes();
    const { ring, steps } = sliced(list, DEFAULT_VNODES, 0, cache);
    expect(ring.points).to.be.greaterThan(200_000);
    expect(steps).to.be.greaterThan(ring.points / 2048); // one chunk of at most 1,024 points per step
    expect(cache.size).to.equal(300);
    const index = ring.indexOf(list[7].key);
    expect(Array.from(cache.of(list[7].key, ring.vnodesPerMember[index]).subarray(0, 3))).to.deep.equal([0, 1, 2].map((v) => hashString(`${list[7].key}#${v}`)));
  });

  it("makes progress on every step, even one whose deadline has passed", () => {
    const build = new RingBuild(members(3), 10);
    let steps = 0;
    while (!build.step(-Infinity)) expect(++steps).to.be.below(100);
    expect(new HashRing(build).points).to.equal(30);
  });

  it("is complete at once for no members, and a ring cannot be taken from an incomplete build", () => {
    expect(new RingBuild([]).complete).to.equal(true);
    expect(new HashRing(new RingBuild([])).size).to.equal(0);
    const build = new RingBuild(members(2));
    expect(() => new HashRing(build)).to.throw(/not complete/);
    expect(() => build.points()).to.throw(/not complete/);
  });

  it("rejects bad members when it is set up, with the one-shot build's errors", () => {
    expect(() => new RingBuild([{ key: "a", weight: 0 }])).to.throw(RangeError, /weight of a/);
    expect(() => new RingBuild([{ key: "a", weight: 1 }, { key: "a", weight: 1 }])).to.throw(RangeError, /duplicate member a/);
    expect(() => new RingBuild([{ key: 7 as unknown as string, weight: 1 }])).to.throw(TypeError, /key must be a string/);
    expect(() => new RingBuild(members(2), 0)).to.throw(RangeError, /vnodes/);
  });
});
