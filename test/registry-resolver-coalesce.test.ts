import { experimental, type ChannelOptions } from "@grpc/grpc-js";
import { expect } from "chai";
import { registerEtcdResolver, COALESCE_MS } from "../registry/etcd/resolver";
import { DISCOVERY_OPTION, type Discovery, type DiscoveryUpdate } from "../registry/registry";
import type { InstanceInfo } from "../runtime/balancing/instances";

/** A Discovery whose updates the test pushes by hand (the resolver is the piece under test). */
class ManualDiscovery {
  private onUpdate: ((u: DiscoveryUpdate) => void) | undefined;
  watch(_service: string, onUpdate: (u: DiscoveryUpdate) => void) {
    this.onUpdate = onUpdate;
    return { stop: () => (this.onUpdate = undefined) };
  }
  async list(): Promise<InstanceInfo[]> {
    return [];
  }
  push(count: number): void {
    const instances = Array.from({ length: count }, (_, i) => instance(i));
    this.onUpdate!({ instances });
  }
}

function instance(i: number): InstanceInfo {
  return { id: `i${i}`, service: "svc", address: `127.0.0.1:${20000 + i}`, version: "", zone: "", weight: 1, metadata: {}, startedAt: 1 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Lets queued microtasks run, and no timer. */
const microtasks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe("etcd:/// resolver: bursts of changes", () => {
  let discovery: ManualDiscovery;
  let reports: { at: number; endpoints: number }[];
  let resolver: experimental.Resolver;

  beforeEach(async () => {
    registerEtcdResolver();
    discovery = new ManualDiscovery();
    reports = [];
    const listener: experimental.ResolverListener = (endpoints) => {
      reports.push({ at: performance.now(), endpoints: endpoints.ok ? endpoints.value.length : -1 });
      return true;
    };
    const options: ChannelOptions = { [DISCOVERY_OPTION]: discovery as unknown as Discovery };
    resolver = experimental.createResolver({ scheme: "etcd", path: "svc" }, listener, options);
    resolver.updateResolution();
    await microtasks();
  });

  afterEach(() => resolver.destroy());

  it("hands a lone change over at once, before any timer could run", async () => {
    discovery.push(1);
    await microtasks();
    expect(reports.map((r) => r.endpoints)).to.deep.equal([1]);
  });

  it("hands a burst over as the first change at once and the rest together, ending with the latest set", async () => {
    discovery.push(1);
    await microtasks();
    for (let n = 2; n <= 6; n++) {
      discovery.push(n * 100);
      await microtasks();
    }
    // The burst followed the first hand-over within the window: nothing more yet.
    expect(reports.map((r) => r.endpoints)).to.deep.equal([1]);
    await sleep(COALESCE_MS + 10);
    expect(reports.map((r) => r.endpoints)).to.deep.equal([1, 600]);
    expect(reports[1]!.at - reports[0]!.at).to.be.at.least(COALESCE_MS - 1);
    // After a quiet window, a change goes over at once again.
    await sleep(COALESCE_MS + 5);
    discovery.push(7);
    await microtasks();
    expect(reports.map((r) => r.endpoints)).to.deep.equal([1, 600, 7]);
  });

  it("drops a pending set when the resolver is destroyed", async () => {
    discovery.push(1);
    await microtasks();
    discovery.push(2);
    await microtasks();
    resolver.destroy();
    await sleep(COALESCE_MS + 10);
    expect(reports.map((r) => r.endpoints)).to.deep.equal([1]);
  });
});
