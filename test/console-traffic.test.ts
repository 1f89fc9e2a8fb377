import { expect } from "chai";
import { createServer, etcdRegistry, type EtcdRegistry, type Server } from "protomesh";
import type { FrameLocator, Page } from "playwright-core";
import { createGateway, type Gateway } from "../gateway";
import { PolicyStore } from "../gateway/policy-store";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { canaryRule } from "../runtime/balancing/rule-builders";
import { openTrafficStore, type TrafficStore } from "../traffic/store";
import { AuditLog } from "../console/audit/audit-log";
import { openConsole, screenshot, waitForText, type ConsoleFixture } from "./helpers/console";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

const SERVICE = "hello-http";
const SAY_HELLO = "/examples.gateway.v1.HttpGreeter/SayHello";

/** A write from inside the page, with the session's CSRF token (as the UI sends it). */
async function postFromPage(page: Page, path: string, body: unknown): Promise<{ status: number; json: { error?: string; details?: { issues?: { path: string; message: string }[] } } }> {
  return page.evaluate(
    async (a) => {
      const s = (await (await fetch("/api/session")).json()) as { csrf: string };
      const res = await fetch(a.path, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": s.csrf }, body: JSON.stringify(a.body) });
      return { status: res.status, json: (await res.json()) as { error?: string; details?: { issues?: { path: string; message: string }[] } } };
    },
    { path, body },
  );
}

describe("console: Traffic & gateway page and HTTP try-it (real etcd, gateway, greeter, Chromium)", function () {
  this.timeout(120_000);
  const fixture = useEmbeddedEtcd();

  describe("with a greeter, a discovering gateway and a traffic rule", () => {
    const namespace = uniqueNamespace();
    let registry: EtcdRegistry;
    let server: Server;
    let gateway: Gateway;
    let gatewayUrl: string;
    let gatewayClosed = false;
    let store: TrafficStore;
    let fx: ConsoleFixture;
    const page = () => fx.page;
    const audit = () => new AuditLog(fixture.rawEtcd(), namespace, 3000);

    before(async () => {
      registry = etcdRegistry({ endpoints: fixture.endpoints, namespace });
      server = createServer({ name: SERVICE, registry, instance: { id: "hello-1", version: "v1" } });
      server.add(HttpGreeterDefinition, httpGreeterHandlers("hello-1"));
      await server.listen("127.0.0.1:0");
      gateway = await createGateway({ etcd: { endpoints: fixture.endpoints, namespace }, discover: true, accessLog: false });
      gatewayUrl = `http://127.0.0.1:${await gateway.listen(0)}`;
      await waitFor(() => gateway.routes().some((r) => r.grpcPath === SAY_HELLO), { timeoutMs: 20_000, what: "the gateway to learn the greeter's routes" });
      store = openTrafficStore({ endpoints: fixture.endpoints, namespace, service: SERVICE, author: "seed" });
      await store.write(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 10 }), { comment: "canary 10 %" });
      fx = await openConsole({ endpoints: fixture.endpoints, namespace, gateway: gatewayUrl });
    });
    after(async () => {
      await fx?.close();
      store?.close();
      if (!gatewayClosed) await gateway?.close();
      await server?.shutdown({ graceMs: 200 });
      await registry?.close();
    });

    describe("traffic rules", () => {
      const rule = () => page().locator(`.traffic-service[data-service="${SERVICE}"]`);

      it("shows the rule in force with its author and note", async () => {
        await page().goto(`${fx.console.url}#/traffic`);
        await rule().click();
        await waitForText(page(), ".doc-version", "version 1 in force");
        expect(await page().locator(".doc-current").textContent()).to.include("canary 10 %").and.include('"version": "v2"');
        expect(await page().locator(".version-row").count()).to.equal(1);
      });

      it("checks the rule as the operator types, with the CLI's parser and validator, naming the bad field", async () => {
        await page().locator("textarea.doc-editor").fill("subsets: [oops");
        await waitForText(page(), ".issues li", /not valid YAML or JSON/);
        expect(await page().locator("button.doc-apply").isDisabled()).to.equal(true);
        await page().locator("textarea.doc-editor").fill(JSON.stringify({ subsets: { a: { labels: { version: "v1" } } }, routes: [{ to: [{ subset: "nope" }] }] }));
        await waitForText(page(), ".issues li", /routes\[0\]\.to\[0\]\.subset/);
        expect(await page().locator("button.doc-apply").isDisabled()).to.equal(true);
      });

      it("refuses a garbage rule sent straight to the API, with the reason, and writes nothing", async () => {
        const res = await postFromPage(page(), `/api/traffic/rules/${SERVICE}/apply`, { text: '{"subsets": 7}', comment: "garbage" });
        expect(res.status).to.equal(400);
        expect(res.json.error).to.match(/^invalid: subsets/);
        expect(res.json.details?.issues?.[0]?.path).to.equal("subsets");
        expect((await store.current())?.version).to.equal(1);
        expect((await audit().list()).filter((e) => e.action.startsWith("traffic."))).to.have.length(0);
      });

      it("shows the diff against the rule in force, then applies the new rule with a note", async () => {
        const next = canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 50 });
        await page().locator("textarea.doc-editor").fill(JSON.stringify(next, null, 2));
        await page().locator(".pending-diff tr").nth(1).waitFor();
        expect(await page().locator(".pending-diff").textContent()).to.include("Changes against version 1").and.include("90").and.include("50");
        await page().locator("input.doc-comment").fill("canary to 50 %");
        await screenshot(page(), "traffic");
        await page().locator("button.doc-apply").click();
        await page().locator('.version-row[data-version="2"]').waitFor();
        const current = await store.current();
        expect(current).to.deep.include({ version: 2, author: "local", comment: "canary to 50 %", kind: "set" });
        expect(current!.value).to.deep.equal(next);
      });

      it("compares any two versions from the history", async () => {
        await page().locator('.version-row[data-version="1"] input.pick').check();
        await page().locator('.version-row[data-version="2"] input.pick').check();
        await page().locator("button.doc-compare").click();
        await page().locator(".history-diff tr.diff-changed").first().waitFor();
        expect(await page().locator(".history-diff h4").textContent()).to.equal("Version 1 → 2");
      });

      it("shows a rule written elsewhere (the CLI, a release) without a reload", async () => {
        await store.write(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 75 }), { comment: "from the shell" });
        await waitForText(page(), ".doc-version", "version 3 in force");
        await page().locator('.version-row[data-version="3"]').waitFor();
      });

      it("rolls back to an earlier version, as a new version", async () => {
        await page().locator('.version-row[data-version="1"] button.rollback').click();
        await waitForText(page(), ".doc-version", "version 4 in force");
        expect(await store.current()).to.deep.include({ version: 4, kind: "rollback", from: 1, author: "local" });
      });

      it("shows an unreadable rule in etcd as a problem, keeps the history, and lets a good rule replace it", async () => {
        await fixture.rawEtcd().put(store.keys.current).value("{ not json");
        await page().locator(".doc-problem").waitFor();
        expect(await page().locator(".doc-problem").textContent()).to.match(/unreadable/);
        expect(await page().locator(".version-row").count()).to.equal(4);
        await page().locator("textarea.doc-editor").fill(JSON.stringify(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 5 })));
        await page().locator(".pending-diff").waitFor();
        await page().locator("button.doc-apply").click();
        await waitForText(page(), ".doc-version", "version 5 in force");
        expect((await store.current())?.version).to.equal(5);
      });

      it("removes the rule (history stays) and records every change in the audit log", async () => {
        await page().locator("button.doc-remove").click();
        await waitForText(page(), ".doc-version", "nothing in force");
        expect(await store.current()).to.equal(undefined);
        expect(await page().locator(".version-row").count()).to.equal(5);
        const actions = (await audit().list()).filter((e) => e.target === `traffic/${SERVICE}`).map((e) => e.action);
        expect(actions).to.deep.equal(["traffic.remove", "traffic.apply", "traffic.rollback", "traffic.apply"]);
      });
    });

    describe("gateway", () => {
      it("lists the routes the gateway derives from the registered services", async () => {
        await page().goto(`${fx.console.url}#/traffic/routes`);
        const row = page().locator(`.route-row[data-grpc="${SAY_HELLO}"][data-method="GET"]`);
        await row.waitFor();
        expect(await row.textContent()).to.include("/v1/hello/{name}").and.include(SERVICE);
        expect(await page().locator(".gateway-url").textContent()).to.equal(gatewayUrl);
      });

      it("edits the gateway policy with its validator; garbage is refused and the gateway keeps its policy", async () => {
        await page().locator('.gateway-row[data-env="default"][data-gateway="default"]').click();
        await waitForText(page(), ".doc-version", "nothing in force");
        await page().locator("textarea.doc-editor").fill('{"defaults": {"ratelimit": 5}}');
        await waitForText(page(), ".issues li", /defaults\.ratelimit.*unknown field/);
        await page().locator("textarea.doc-editor").fill('{"methods": {"no method here": {"timeoutMs": -1}}}');
        await waitForText(page(), ".issues", /methods\["no method here"\]/);
        const res = await postFromPage(page(), "/api/gateway/policies/default/default/apply", { text: '{"defaults": {"auth": "maybe"}}' });
        expect(res.status).to.equal(400);
        expect(res.json.error).to.match(/defaults\.auth/);
        expect(gateway.policy.version).to.equal(0);
      });

      it("applies a policy the running gateway picks up, and rolls it back", async () => {
        await page().locator("textarea.doc-editor").fill('{"defaults": {"timeoutMs": 5000}}');
        await page().locator(".pending-diff").waitFor();
        await page().locator("input.doc-comment").fill("5 s deadline");
        await page().locator("button.doc-apply").click();
        await waitForText(page(), ".doc-version", "version 1 in force");
        await waitFor(() => gateway.policy.version === 1, { timeoutMs: 10_000, what: "the gateway to apply version 1" });
        expect(gateway.policy.value.defaults?.timeoutMs).to.equal(5000);
        await page().locator("textarea.doc-editor").fill('{"defaults": {"timeoutMs": 9000, "maxBodyBytes": 2048}}');
        await page().locator(".pending-diff tr.diff-added").waitFor();
        await page().locator("button.doc-apply").click();
        await waitForText(page(), ".doc-version", "version 2 in force");
        await screenshot(page(), "gateway");
        await page().locator('.version-row[data-version="1"] button.rollback').click();
        await waitForText(page(), ".doc-version", "version 3 in force");
        await waitFor(() => gateway.policy.version === 3, { timeoutMs: 10_000, what: "the gateway to apply version 3" });
        expect(gateway.policy.value.defaults).to.deep.equal({ timeoutMs: 5000 });
        const policy = new PolicyStore({ endpoints: fixture.endpoints, namespace, gateway: "default", env: "default" });
        try {
          expect(await policy.store.current()).to.deep.include({ version: 3, kind: "rollback", from: 1, author: "local" });
        } finally {
          policy.close();
        }
        const actions = (await audit().list()).filter((e) => e.target === "gateway.default@default").map((e) => e.action);
        expect(actions).to.deep.equal(["gateway.policy.rollback", "gateway.policy.apply", "gateway.policy.apply"]);
      });
    });

    describe("API page: try it over HTTP through the gateway", () => {
      let frame: FrameLocator;
      const panel = () => frame.locator(`details.try[data-method="${SAY_HELLO}"]`);

      it("offers the gateway route beside the gRPC try-it and sends the call through the gateway", async () => {
        await page().goto(`${fx.console.url}#/api/${SERVICE}`);
        frame = page().frameLocator("iframe.api-docs");
        await panel().waitFor();
        expect(await panel().locator("button.try-send-http").getAttribute("data-route")).to.equal("GET /v1/hello/{name}");
        expect(await frame.locator('details.try[data-method="/examples.gateway.v1.HttpGreeter/Unannotated"] button.try-send-http').count()).to.equal(0);
        await panel().locator("summary").click();
        await panel().locator("textarea.try-request").fill('{"name":"over http"}');
        await panel().locator("button.try-send-http").click();
        const output = panel().locator('pre.try-response:is([data-state="ok"], [data-state="error"])');
        await output.waitFor();
        const text = (await output.textContent())!;
        expect(await output.getAttribute("data-state"), text).to.equal("ok");
        expect(await output.getAttribute("data-via")).to.equal("http");
        expect(await output.getAttribute("data-http-status")).to.equal("200");
        const [line, ...json] = text.split("\n");
        expect(line).to.equal("GET /v1/hello/over%20http  → HTTP 200");
        expect(JSON.parse(json.join("\n"))).to.deep.include({ message: "Hello, over http!", servedBy: "hello-1" });
        await screenshot(page(), "api-http");
      });

      it("names a missing path field instead of sending a broken request", async () => {
        await panel().locator("textarea.try-request").fill("{}");
        await panel().locator("button.try-send-http").click();
        await panel().locator('pre.try-response[data-state="error"]').waitFor();
        expect(await panel().locator("pre.try-response").textContent()).to.match(/^INVALID_ARGUMENT: the path \/v1\/hello\/\{name\} needs name/);
      });

      it("says so when the gateway is down", async () => {
        await gateway.close();
        gatewayClosed = true;
        await panel().locator("textarea.try-request").fill('{"name":"x"}');
        await panel().locator("button.try-send-http").click();
        const text = await waitFor(async () => {
          const t = (await panel().locator("pre.try-response").textContent()) ?? "";
          return /UNAVAILABLE/.test(t) && t;
        }, { timeoutMs: 20_000, what: "the HTTP try to fail" });
        expect(text).to.match(/UNAVAILABLE: cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+/);
      });
    });
  });
});
