import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { main } from "../cli/main";
import { createServer, RpcError, Status, type Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd";
import { createGateway, type Gateway, type GatewayOptions } from "../gateway";
import { createJsonLogger } from "../runtime/logger";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { HttpGreeterDefinition } from "./helpers/gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

/**
 * Circuit breaking at the gateway comes from grpc-js outlier detection around the balancer:
 * two registered instances of one service, one of them a real server that answers INTERNAL to
 * every call. Calls are counted where they arrive, in each instance.
 */
describe("gateway circuit breaking (outlier detection; real etcd, a real failing instance)", function () {
  this.timeout(60_000);
  const etcd = useEmbeddedEtcd();
  let namespace: string;
  let registry: EtcdRegistry;
  const servers: Server[] = [];
  const calls = { good: 0, bad: 0 };
  const gateways: Gateway[] = [];
  // Judged every 200 ms once an instance had 5 calls; an ejection lasts far longer than the spec.
  const fast = { intervalMs: 200, baseEjectionTimeMs: 60_000, requestVolume: 5 };

  before(async () => {
    namespace = uniqueNamespace();
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace, logger: createJsonLogger({ level: "silent" }) });
    const good = createServer({ name: "http-greeter", registry, instance: { version: "v1" } });
    const handlers = httpGreeterHandlers("good");
    good.add(HttpGreeterDefinition, {
      ...handlers,
      sayHello: (req, ctx) => {
        calls.good++;
        return handlers.sayHello(req, ctx);
      },
    });
    const bad = createServer({ name: "http-greeter", registry, instance: { version: "v1" } });
    bad.add(HttpGreeterDefinition, {
      ...httpGreeterHandlers("bad"),
      sayHello: async () => {
        calls.bad++;
        throw new RpcError(Status.INTERNAL, "this instance is broken");
      },
    });
    for (const s of [good, bad]) {
      await s.listen("127.0.0.1:0");
      servers.push(s);
    }
  });

  after(async () => {
    for (const g of gateways) await g.close();
    for (const s of servers) await s.shutdown();
    await registry?.close();
  });

  async function gatewayWith(options: Partial<GatewayOptions>): Promise<{ gateway: Gateway; url: string }> {
    const gateway = await createGateway({ etcd: { endpoints: etcd.endpoints, namespace }, discover: true, accessLog: false, logger: createJsonLogger({ level: "silent" }), ...options });
    gateways.push(gateway);
    const url = `http://127.0.0.1:${await gateway.listen(0)}`;
    await waitFor(async () => (await fetch(`${url}/v1/hello/a`)).status !== 404, { timeoutMs: 20_000, what: "routes discovered" });
    return { gateway, url };
  }

  /** Sends `n` requests one after another; counts the calls each instance received and the answers. */
  async function send(url: string, n: number, headers: Record<string, string> = {}): Promise<{ good: number; bad: number; statuses: number[]; subsets: (string | null)[] }> {
    const before = { ...calls };
    const statuses: number[] = [];
    const subsets: (string | null)[] = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${url}/v1/hello/x${i}`, { headers });
      await r.arrayBuffer();
      statuses.push(r.status);
      subsets.push(r.headers.get("x-protomesh-subset"));
    }
    return { good: calls.good - before.good, bad: calls.bad - before.bad, statuses, subsets };
  }

  /** Sends requests until the failing instance gets none over 20 in a row (it has been ejected). */
  async function untilEjected(url: string, headers: Record<string, string> = {}): Promise<number> {
    const started = Date.now();
    await waitFor(async () => (await send(url, 20, headers)).bad === 0, { timeoutMs: 15_000, intervalMs: 1, what: "the failing instance ejected" });
    return Date.now() - started;
  }

  it("without outlier detection (the default, as for clients) the failing instance keeps its share", async () => {
    const { url } = await gatewayWith({});
    await send(url, 10); // both instances connected
    const r = await send(url, 40);
    expect(r.good + r.bad).to.equal(40);
    expect(r.bad).to.be.within(15, 25);
    expect(r.statuses.filter((s) => s === 500).length).to.equal(r.bad);
  });

  it("ejects the failing instance of an etcd:/// channel: afterwards every request reaches the good one", async () => {
    const { url } = await gatewayWith({ outlierDetection: fast });
    await untilEjected(url);
    const r = await send(url, 40);
    expect(r).to.include({ good: 40, bad: 0 });
    expect(r.statuses.every((s) => s === 200)).to.equal(true);
  });

  it("ejects it from the instance set a traffic rule picks (an ipv4:a,b channel) too", async () => {
    const { gateway, url } = await gatewayWith({ outlierDetection: fast });
    gateway.setPolicy({ traffic: { "http-greeter": { subsets: { v1: { labels: { version: "v1" } } }, routes: [{ name: "all", to: [{ subset: "v1" }] }] } } });
    // Both instances are in the subset: the rule's channel dials both, and balances over them.
    await waitFor(async () => (await send(url, 10)).subsets.every((s) => s === "v1"), { timeoutMs: 15_000, what: "the rule in force" });
    await untilEjected(url);
    const r = await send(url, 40);
    expect(r).to.include({ good: 40, bad: 0 });
    expect(r.subsets.every((s) => s === "v1")).to.equal(true);
  });

  it("refuses bad settings at start, naming the option", async () => {
    const options = { upstreams: [{ target: "127.0.0.1:1", definitions: [HttpGreeterDefinition] }], accessLog: false };
    let err: unknown;
    await createGateway({ ...options, outlierDetection: { threshold: 120 } }).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/outlierDetection\.threshold must be a percentage/);
    err = undefined;
    await createGateway({ ...options, balancer: "pick_first", outlierDetection: true }).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/pick_first has nothing to eject to/);
  });

  it("protomesh gateway: --balancer and --outlier-detection, settings in --config, bad ones refused in one line", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-od-"));
    const run = async (args: string[]) => {
      let out = "";
      let err = "";
      const code = await main(["gateway", ...args], { cwd: dir, env: {}, out: (t) => void (out += t), err: (t) => void (err += t) });
      return { code, out, err };
    };
    try {
      const etcdFlag = ["--etcd", etcd.endpoints.join(",")];
      const wrong = await run(["--balancer", "fastest", ...etcdFlag]);
      expect(wrong.code).to.equal(2);
      expect(wrong.err).to.contain('--balancer must be one of round_robin, p2c, least_request, consistent_hash, pick_first, got "fastest"');
      fs.writeFileSync(path.join(dir, "gw.yaml"), "balancer: p2c\noutlier-detection: { threshold: 120 }\n");
      const range = await run(["--config", "gw.yaml", ...etcdFlag]);
      expect(range.code).to.equal(1);
      expect(range.err).to.equal("protomesh gateway run: outlierDetection.threshold must be a percentage from 0 to 100, got 120\n");
      const first = await run(["--balancer", "pick_first", "--outlier-detection", ...etcdFlag]);
      expect(first.code).to.equal(1);
      expect(first.err).to.contain("pick_first has nothing to eject to");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
