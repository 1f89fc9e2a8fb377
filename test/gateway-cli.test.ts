import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd";
import { main } from "../cli/main";
import type { CliIo } from "../cli/command";
import { createGateway, type Gateway } from "../gateway";
import { startRegisteredGreeter } from "./helpers/gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";
import { run } from "./helpers/packed";
import * as net from "node:net";

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { cwd: process.cwd(), env, out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(args, io);
  return { code, out, err };
}

describe("gateway discovery and CLI (real etcd, a service registering while the gateway runs)", function () {
  this.timeout(60_000);
  const etcd = useEmbeddedEtcd();
  let namespace: string;
  let registry: EtcdRegistry;
  let gateway: Gateway | undefined;
  let servers: Server[] = [];

  before(() => {
    namespace = uniqueNamespace();
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace });
  });
  after(async () => {
    await gateway?.close();
    for (const s of servers) await s.shutdown();
    await registry?.close();
  });

  async function startRegistered(name: string, servedBy: string, version = "v1"): Promise<Server> {
    const server = await startRegisteredGreeter(registry, name, servedBy, version);
    servers.push(server);
    return server;
  }

  it("routes a service that registers after the gateway started, without a restart", async () => {
    gateway = await createGateway({ etcd: { endpoints: etcd.endpoints, namespace }, discover: true, accessLog: false });
    const port = await gateway.listen(0);
    expect((await fetch(`http://127.0.0.1:${port}/v1/hello/a`)).status).to.equal(404);
    await startRegistered("http-greeter", "late");
    const res = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/v1/hello/a`);
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 20_000, what: "route discovered" },
    );
    expect(((await res.json()) as { servedBy: string }).servedBy).to.equal("late");
    expect(gateway.routes().every((r) => r.target === "etcd:///http-greeter")).to.equal(true);
  });

  it("routes canary traffic by the shared traffic rule (header and cookie matches, a subset with no instance fails with 503)", async () => {
    await startRegistered("http-greeter", "v2-instance", "v2");
    const url = `http://127.0.0.1:${(gateway!.server.address() as { port: number }).port}`;
    gateway!.setPolicy({
      traffic: {
        "http-greeter": {
          subsets: { stable: { labels: { version: "v1" } }, canary: { labels: { version: "v2" } } },
          routes: [
            { name: "testers", match: { headers: { "x-tester": "yes" } }, to: [{ subset: "canary" }] },
            { name: "beta-cookie", match: { attributes: { "cookie.beta": "1" } }, to: [{ subset: "canary" }] },
            { name: "everyone", to: [{ subset: "stable" }] },
          ],
        },
      },
    });
    const servedBy = async (headers: Record<string, string>) => {
      const r = await fetch(`${url}/v1/hello/a`, { headers });
      expect(r.status).to.equal(200);
      return { by: ((await r.json()) as { servedBy: string }).servedBy, route: r.headers.get("x-protomesh-route"), subset: r.headers.get("x-protomesh-subset") };
    };
    // The instance list arrives through the registry watch; wait until both versions are known.
    await waitFor(async () => (await servedBy({ "x-tester": "yes" })).by === "v2-instance", { timeoutMs: 15_000, what: "canary reachable" });
    for (let i = 0; i < 5; i++) expect(await servedBy({})).to.deep.equal({ by: "late", route: "everyone", subset: "stable" });
    expect(await servedBy({ "x-tester": "yes" })).to.deep.equal({ by: "v2-instance", route: "testers", subset: "canary" });
    expect((await servedBy({ cookie: "a=b; beta=1" })).by).to.equal("v2-instance");
    gateway!.setPolicy({
      traffic: { "http-greeter": { subsets: { blue: { labels: { version: "v3" } } }, routes: [{ to: [{ subset: "blue" }] }], fallback: "fail" } },
    });
    const none = await fetch(`${url}/v1/hello/a`);
    expect(none.status).to.equal(503);
    // The caller is not told the service, subset or why (that is in the log): only the request id.
    const failed = (await none.json()) as { message: string; details: { value: unknown }[] };
    expect(failed.message).to.equal("no upstream instance for this request");
    expect(failed.details).to.deep.equal([{ "@type": "type.googleapis.com/google.protobuf.Value", value: { requestId: none.headers.get("x-request-id") } }]);
    gateway!.setPolicy({});
    expect((await fetch(`${url}/v1/hello/a`)).status).to.equal(200);
  });

  it("refuses a traffic rule that does not validate, naming the field", () => {
    expect(() => gateway!.setPolicy({ traffic: { "http-greeter": { subsets: {}, routes: [{ to: [{ subset: "nope" }] }] } } })).to.throw(/traffic\["http-greeter"\]/);
  });

  it("gateway routes prints the derived table", async () => {
    const r = await cli(["gateway", "routes", "--etcd", etcd.endpoints.join(","), "--namespace", namespace, "--unannotated"]);
    expect(r.err).to.equal("");
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/GET\s+\/v1\/hello\/\{name\}\s+→ \/examples\.gateway\.v1\.HttpGreeter\/SayHello\s+@ etcd:\/\/\/http-greeter/);
    expect(r.out).to.match(/POST\s+\/examples\.gateway\.v1\.HttpGreeter\/Unannotated/);
    const json = await cli(["gateway", "routes", "--etcd", etcd.endpoints.join(","), "--namespace", namespace, "--json"]);
    expect((JSON.parse(json.out) as unknown[]).length).to.equal(9);
  });

  it("gateway policy apply/get/history/rollback, refusing an invalid file with the reason", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-cli-"));
    const common = ["--etcd", etcd.endpoints.join(","), "--namespace", namespace];
    try {
      fs.writeFileSync(path.join(dir, "p1.yaml"), "defaults:\n  timeoutMs: 5000\n");
      fs.writeFileSync(path.join(dir, "bad.yaml"), "defaults:\n  timeoutMS: 5000\n");
      const applied = await cli(["gateway", "policy", "apply", "-f", path.join(dir, "p1.yaml"), "--comment", "first", ...common]);
      expect(applied.out).to.match(/version 1 written/);
      const bad = await cli(["gateway", "policy", "apply", "-f", path.join(dir, "bad.yaml"), ...common]);
      expect(bad.code).to.equal(1);
      expect(bad.err).to.contain("defaults.timeoutMS: unknown field");
      await cli(["gateway", "policy", "set", '{"defaults":{"timeoutMs":9000}}', ...common]);
      const got = await cli(["gateway", "policy", "get", "--json", ...common]);
      expect(JSON.parse(got.out)).to.deep.equal({ version: 2, policy: { defaults: { timeoutMs: 9000 } } });
      await waitFor(() => gateway!.policy.version === 2, { timeoutMs: 10_000 });
      const rolled = await cli(["gateway", "policy", "rollback", "1", ...common]);
      expect(rolled.out).to.match(/version 3 written \(a copy of version 1\)/);
      const history = await cli(["gateway", "policy", "history", ...common]);
      expect(history.out.trim().split("\n").map((l) => l.trim().split(/\s+/)[0])).to.deep.equal(["3", "2", "1"]);
      await waitFor(() => gateway!.policy.version === 3 && gateway!.policy.value.defaults?.timeoutMs === 5000, { timeoutMs: 10_000 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gateway keys create/list/revoke: the key is printed once and never listed", async () => {
    const common = ["--etcd", etcd.endpoints.join(","), "--namespace", namespace];
    const created = await cli(["gateway", "keys", "create", "ci-bot", "--scopes", "echo,read", "--json", ...common]);
    const { id, key } = JSON.parse(created.out) as { id: string; key: string };
    expect(key).to.match(/^pmk_/);
    const list = await cli(["gateway", "keys", "list", ...common]);
    expect(list.out).to.contain(id);
    expect(list.out).to.contain("[echo, read]");
    expect(list.out).not.to.contain(key);
    expect((await cli(["gateway", "keys", "revoke", id, ...common])).code).to.equal(0);
    const again = await cli(["gateway", "keys", "revoke", id, ...common]);
    expect(again.code).to.equal(1);
    expect(again.out).to.equal("");
    expect(again.err).to.equal(`protomesh gateway keys: no key ${id} (protomesh gateway keys list shows the ids)\n`);
  });

  it("gateway run on a port in use fails in one line and exits; an unknown --config key is refused", async () => {
    const CLI = path.resolve(__dirname, "..", "bin", "protomesh.js");
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-cli-"));
    try {
      const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: namespace };
      // A child process: the gateway's etcd watches, left open, would keep it running (killed at the timeout: code null).
      const busy = await run(process.execPath, [CLI, "gateway", "--port", String(port)], dir, { env, timeoutMs: 30_000 });
      expect(busy.code, busy.stderr).to.equal(1);
      expect(busy.stderr).to.equal(`protomesh gateway run: 127.0.0.1:${port} is in use; pick another port with --port\n`);
      fs.writeFileSync(path.join(dir, "gateway.yaml"), "port: 0\nunanotated: true\n");
      const typo = await run(process.execPath, [CLI, "gateway", "--config", "gateway.yaml"], dir, { env, timeoutMs: 30_000 });
      expect(typo.code, typo.stderr).to.equal(1);
      expect(typo.stderr).to.match(/^protomesh gateway run: --config \S+gateway\.yaml: unknown key "unanotated" \(known: port, host, .*unannotated.*\)\n$/);
    } finally {
      taken.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers --help and usage mistakes", async () => {
    const help = await cli(["gateway", "--help"]);
    expect(help.code).to.equal(0);
    expect(help.out).to.contain("protomesh gateway keys create|revoke|list");
    const wrong = await cli(["gateway", "policy", "frobnicate", "--etcd", etcd.endpoints.join(",")]);
    expect(wrong.code).to.equal(2);
    const redis = await cli(["gateway", "--port", "0", "--etcd", etcd.endpoints.join(","), "--redis", "127.0.0.1:6379"]);
    expect(redis.code).to.equal(2);
    expect(redis.err).to.match(/--redis must be a redis:\/\/ or rediss:\/\/ URL such as redis:\/\/127\.0\.0\.1:6379, got "127\.0\.0\.1:6379"/);
    const noEtcd = await cli(["gateway", "keys", "list"]);
    expect(noEtcd.code).to.equal(1);
    expect(noEtcd.err).to.contain("--etcd");
  });
});
