import { expect } from "chai";
import { createClient, createServer, etcdRegistry, type EtcdRegistry, type Server } from "protomesh";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { openConsole, screenshot, waitForText, type ConsoleFixture } from "./helpers/console";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

describe("console: Services page (real etcd, real instances, Chromium)", function () {
  this.timeout(90_000);
  const fixture = useEmbeddedEtcd();
  // Nested, so its hooks run inside the etcd fixture's: instances and console stop before etcd does.
  describe("with a greeter fleet", () => {
    const namespace = uniqueNamespace();
    let registry: EtcdRegistry;
    let fx: ConsoleFixture;
    const servers: Server[] = [];

    async function startGreeter(name: string, zone: string): Promise<Server> {
      const server = createServer({ name: "greeter", registry, instance: { id: name, zone, version: "1.2.0", metadata: { team: "web" } } });
      server.add(GreeterDefinition, greeterHandlers(name));
      await server.listen("127.0.0.1:0");
      servers.push(server);
      return server;
    }

    before(async () => {
      registry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: 5 });
      await startGreeter("greeter-a", "a");
      fx = await openConsole({ endpoints: fixture.endpoints, namespace });
      await fx.page.goto(`${fx.console.url}#/services`);
    });
    after(async () => {
      await fx?.close();
      for (const s of servers) await s.shutdown({ graceMs: 200 }).catch(() => undefined);
      await registry?.close();
    });

    const instanceRow = (id: string) => fx.page.locator(`.instance-row[data-id="${id}"]`);

    it("lists the registered service and its instance", async () => {
      await fx.page.locator('.service-row[data-service="greeter"]').waitFor();
      await instanceRow("greeter-a").waitFor();
      expect(await instanceRow("greeter-a").textContent()).to.include("1.2.0");
    });

    it("shows a new registration without a reload, and removes it when the instance deregisters", async () => {
      const b = await startGreeter("greeter-b", "b");
      await instanceRow("greeter-b").waitFor({ timeout: 10_000 });
      expect(await fx.page.locator('.service-row[data-service="greeter"] [data-testid="instance-count"]').textContent()).to.equal("2");
      await b.shutdown({ graceMs: 200 });
      servers.splice(servers.indexOf(b), 1);
      await instanceRow("greeter-b").waitFor({ state: "detached", timeout: 10_000 });
      expect(await fx.page.locator('.service-row[data-service="greeter"] [data-testid="instance-count"]').textContent()).to.equal("1");
    });

    it("filters instances on the server by zone, version or metadata", async () => {
      await startGreeter("greeter-c", "c");
      await instanceRow("greeter-c").waitFor({ timeout: 10_000 });
      await fx.page.locator("#instance-filter").fill("greeter-c");
      await waitForText(fx.page, '[data-testid="instance-total"]', "1 instances");
      expect(await instanceRow("greeter-a").count()).to.equal(0);
      await fx.page.locator("#instance-filter").fill("");
      await instanceRow("greeter-a").waitFor();
    });

    it("opens an instance with its live health and lease, and drains it so clients stop calling it", async () => {
      await instanceRow("greeter-a").click();
      const detail = fx.page.locator('.instance-detail[data-id="greeter-a"]');
      await detail.waitFor();
      expect(await detail.locator('[data-testid="health"]').textContent()).to.equal("SERVING");
      expect(await detail.textContent()).to.match(/TTL \d+ s of 5 s/);
      await screenshot(fx.page, "services");

      await detail.locator("button.drain").click();
      await waitForText(fx.page, '[data-testid="balancing"]', /^draining/);
      // The registry entry says so, and a client balancing over etcd:///greeter stops picking greeter-a.
      const raw = fixture.rawEtcd();
      const value = JSON.parse((await raw.get(`/protomesh/${namespace}/services/greeter/greeter-a`).string())!) as { metadata: Record<string, string> };
      expect(value.metadata["protomesh.draining"]).to.equal("true");
      const client = createClient(GreeterDefinition, "etcd:///greeter", { discovery: registry, balancer: "round_robin" });
      try {
        await waitFor(async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 10; i++) seen.add((await client.sayHello({ name: "x" })).servedBy);
          return !seen.has("greeter-a") && seen.has("greeter-c");
        }, { timeoutMs: 10_000, what: "calls to skip the drained instance" });
      } finally {
        client.$close();
      }
      // It is still registered and still listed.
      await waitForText(fx.page, '.instance-row[data-id="greeter-a"] span:last-child', "draining");
      await detail.locator("button.drain").click();
      await waitForText(fx.page, '[data-testid="balancing"]', "in rotation");
    });

    it("changes an instance's weight in the registry, keeping its lease", async () => {
      const raw = fixture.rawEtcd();
      const key = `/protomesh/${namespace}/services/greeter/greeter-a`;
      const leaseBefore = (await raw.get(key).exec()).kvs[0]!.lease;
      const detail = fx.page.locator('.instance-detail[data-id="greeter-a"]');
      await detail.locator("input.weight").fill("3");
      await detail.locator("button.set-weight").click();
      await waitForText(fx.page, '[data-testid="weight"]', "3");
      const kv = (await raw.get(key).exec()).kvs[0]!;
      expect(JSON.parse(kv.value.toString()).weight).to.equal(3);
      expect(kv.lease).to.equal(leaseBefore);
    });

    it("records each change in the audit log with before and after", async () => {
      const entries = await fx.console.audit.list();
      const actions = entries.map((e) => e.action);
      expect(actions).to.include.members(["instance.drain", "instance.undrain", "instance.weight"]);
      const weight = entries.find((e) => e.action === "instance.weight")!;
      expect(weight).to.deep.include({ who: "local", via: "console", target: "greeter/greeter-a" });
      expect((weight.before as { weight: number }).weight).to.equal(1);
      expect((weight.after as { weight: number }).weight).to.equal(3);
    });
  });
});
