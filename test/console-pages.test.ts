import { SpanKind } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { createClient, createServer, etcdRegistry, type EtcdRegistry, type Server } from "protomesh";
import type { FrameLocator } from "playwright-core";
import { buildDescriptors } from "../apidocs/descriptor-set";
import { main } from "../cli/main";
import { openStore } from "../config/store";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../examples/greeter/service";
import { openConsole, screenshot, waitForText, type ConsoleFixture } from "./helpers/console";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { GreeterConfigDefinition } from "./helpers/greeter-config";
import { waitFor } from "./helpers/wait";

const REPO = path.resolve(__dirname, "..");

describe("console: Config, API, Traces and Audit pages (real etcd, instances, Chromium)", function () {
  this.timeout(120_000);
  const fixture = useEmbeddedEtcd();

  describe("with a greeter and its config", () => {
    const namespace = uniqueNamespace();
    let registry: EtcdRegistry;
    let server: Server;
    let fx: ConsoleFixture;

    before(async () => {
      registry = etcdRegistry({ endpoints: fixture.endpoints, namespace });
      server = createServer({ name: "greeter", registry, instance: { id: "greeter-1" } });
      server.add(GreeterDefinition, greeterHandlers("greeter-1"));
      await server.listen("127.0.0.1:0");
      const store = openStore({ endpoints: fixture.endpoints, namespace, app: "greeter", env: "prod", schema: GreeterConfigDefinition, author: "seed" });
      await store.write({ greeting: "Hello", maxNameLength: 20 }, { comment: "first" });
      store.close();
      fx = await openConsole({ endpoints: fixture.endpoints, namespace, protos: await buildDescriptors(REPO, process.env) });
    });
    after(async () => {
      await fx?.close();
      await server?.shutdown({ graceMs: 200 });
      await registry?.close();
    });

    describe("Config", () => {
      const page = () => fx.page;

      it("shows the current values against the proto schema, with field comments", async () => {
        await page().goto(`${fx.console.url}#/config`);
        await page().locator('.app-row[data-app="greeter"][data-env="prod"]').click();
        await waitForText(page(), '.schema tr[data-field="greeting"] .value', '"Hello"');
        expect(await page().locator('.schema tr[data-field="maxNameLength"]').textContent()).to.include("uint32").and.include("20").and.include("Longer names are cut");
        expect(await page().locator('.schema tr[data-field="rateLimit.burst"]').count()).to.equal(1);
      });

      it("validates as the operator types, naming the field", async () => {
        await page().locator("#config-editor").fill('{"greeting": "Hi", "maxNameLength": -3}');
        await waitForText(page(), ".issues li", /maxNameLength/);
        expect(await page().locator("#publish").isDisabled()).to.equal(true);
        await page().locator("#config-editor").fill('{"greeting": "Hi", "maxNameLength": 20, "nope": 1}');
        await waitForText(page(), ".issues li", /nope/);
      });

      it("shows the diff before publishing, then publishes with a release note", async () => {
        await page().locator("#config-editor").fill('{"greeting": "Hi", "maxNameLength": 20, "blockedNames": ["eve"]}');
        await page().locator('.pending-diff tr[data-path="greeting"]').waitFor();
        expect(await page().locator('.pending-diff tr[data-path="greeting"]').textContent()).to.include('"Hello"').and.include('"Hi"');
        expect(await page().locator(".pending-diff tr.diff-added").count()).to.equal(1);
        await screenshot(page(), "config");
        await page().locator("#release-note").fill("shorter greeting");
        await page().locator("#publish").click();
        await page().locator('.version-row[data-version="2"]').waitFor();
        const store = openStore({ endpoints: fixture.endpoints, namespace, app: "greeter", env: "prod" });
        try {
          const current = await store.current();
          expect(current).to.deep.include({ version: 2, comment: "shorter greeting", author: "local" });
          expect(current!.value).to.deep.equal({ greeting: "Hi", maxNameLength: 20, blockedNames: ["eve"] });
        } finally {
          store.close();
        }
      });

      it("diffs any two versions from the history", async () => {
        await page().locator('.version-row[data-version="1"] input.pick').check();
        await page().locator('.version-row[data-version="2"] input.pick').check();
        await page().locator("#compare").click();
        await page().locator('.history-diff tr[data-path="greeting"]').waitFor();
        expect(await page().locator(".history-diff h4").textContent()).to.equal("Version 1 → 2");
      });

      it("rolls back to an earlier version as a new version", async () => {
        await page().locator('.version-row[data-version="1"] button.rollback').click();
        await page().locator('.version-row[data-version="3"]').waitFor();
        await waitForText(page(), '.schema tr[data-field="greeting"] .value', '"Hello"');
        const store = openStore({ endpoints: fixture.endpoints, namespace, app: "greeter", env: "prod" });
        try {
          expect(await store.current()).to.deep.include({ version: 3, kind: "rollback", from: 1 });
        } finally {
          store.close();
        }
      });

      it("starts a gray release by labels and promotes it", async () => {
        await page().locator("#config-editor").fill('{"greeting": "Howdy"}');
        await page().locator('.pending-diff tr[data-path="greeting"]').waitFor();
        await page().locator("#gray-labels").fill("zone=b");
        await page().locator("#start-gray").click();
        await waitForText(page(), ".gray-rule", /version 4 for instances with zone=b/);
        const store = openStore({ endpoints: fixture.endpoints, namespace, app: "greeter", env: "prod" });
        try {
          expect((await store.effective({ zone: "b" }))?.value).to.deep.equal({ greeting: "Howdy" });
          expect((await store.effective({ zone: "a" }))?.value.greeting).to.equal("Hello");
          await page().locator(".gray-rule button.promote").click();
          await page().locator(".gray-rule").waitFor({ state: "detached" });
          expect(await store.current()).to.deep.include({ version: 5, kind: "promote", from: 4 });
        } finally {
          store.close();
        }
      });
    });

    describe("API", () => {
      let frame: FrameLocator;

      it("shows the docs of every registered service, learnt by reflection", async () => {
        await fx.page.goto(`${fx.console.url}#/api`);
        await fx.page.locator('.api-service[data-service="greeter"]').waitFor();
        frame = fx.page.frameLocator("iframe.api-docs");
        await frame.locator('details.try[data-method="/examples.greeter.v1.Greeter/SayHello"]').waitFor();
        expect(await frame.locator("#try-target").inputValue()).to.equal("etcd:///greeter");
      });

      it("tries a method through the registry and shows the answer", async () => {
        const panel = frame.locator('details.try[data-method="/examples.greeter.v1.Greeter/SayHello"]');
        await panel.locator("summary").click();
        await panel.locator("textarea.try-request").fill('{"name":"console"}');
        await panel.locator("button.try-send").click();
        const output = panel.locator('pre.try-response:is([data-state="ok"], [data-state="error"])');
        await output.waitFor();
        expect(await output.getAttribute("data-state")).to.equal("ok");
        expect(JSON.parse((await output.textContent())!)).to.deep.include({ message: "Hello, console!", servedBy: "greeter-1" });
        await screenshot(fx.page, "api");
      });

      it("refuses targets that are not registered", async () => {
        const panel = frame.locator('details.try[data-method="/examples.greeter.v1.Greeter/SayHello"]');
        await frame.locator("#try-target").fill("127.0.0.1:1");
        await panel.locator("button.try-send").click();
        await panel.locator('pre.try-response[data-state="error"]').waitFor();
        expect(await panel.locator("pre.try-response").textContent()).to.match(/^PERMISSION_DENIED: the console calls only registered services/);
      });
    });

    describe("Audit log", () => {
      it("lists every change with who, what, and before/after", async () => {
        await fx.page.goto(`${fx.console.url}#/audit`);
        await fx.page.locator('.audit-row[data-action="config.publish"]').waitFor();
        const actions = await fx.page.locator(".audit-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-action")));
        expect(actions).to.deep.equal(["config.promote", "config.gray", "config.rollback", "config.publish"]);
        await fx.page.locator('.audit-row[data-action="config.publish"]').click();
        expect(await fx.page.locator('.audit-detail tr[data-path="greeting"]').textContent()).to.include('"Hello"').and.include('"Hi"');
        await screenshot(fx.page, "audit");
      });

      it("shows changes made with the CLI too", async () => {
        let err = "";
        const code = await main(["config", "set", "greeting=Yo", "--app", "greeter", "--env", "prod", "--namespace", namespace, "--endpoints", fixture.endpoints.join(","), "--author", "cli-user", "--comment", "from the shell"], {
          cwd: REPO,
          env: process.env,
          out: () => undefined,
          err: (t) => void (err += t),
        });
        expect(code, err).to.equal(0);
        await fx.page.reload();
        const row = fx.page.locator('.audit-row[data-action="config.set"]');
        await row.waitFor();
        expect(await row.textContent()).to.include("cli-user").and.include("cli").and.include("greeter@prod");
        await row.click();
        expect(await fx.page.locator('.audit-detail tr[data-path="greeting"]').textContent()).to.include('"Yo"');
      });
    });
  });

  describe("Traces: a call chain A → (B ∥ C), B → D exported to the console's receiver", () => {
    let fx: ConsoleFixture;
    const nodes: { role: string; child: ChildProcess; port: number; lines: AsyncIterator<string> }[] = [];
    const traceId = randomBytes(16).toString("hex");

    before(async () => {
      fx = await openConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace() });
      for (const role of ["A", "B", "C", "D"]) {
        const child = spawn(process.execPath, [require.resolve("tsx/cli"), path.join(__dirname, "helpers", "chain-node.ts")], {
          env: { ...process.env, CHAIN_ROLE: role, OTEL_SERVICE_NAME: `chain-${role.toLowerCase()}`, PROTOMESH_TRACING_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: fx.console.url, OTEL_BSP_SCHEDULE_DELAY: "20" },
          stdio: ["pipe", "pipe", "inherit"],
        });
        const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
        const m = /^READY (\d+)$/.exec(String((await lines.next()).value));
        if (!m) throw new Error(`chain node ${role} did not start`);
        nodes.push({ role, child, port: Number(m[1]), lines });
      }
      const address = (role: string) => `127.0.0.1:${nodes.find((n) => n.role === role)!.port}`;
      const wiring: Record<string, Record<string, string>> = { A: { B: address("B"), C: address("C") }, B: { D: address("D") }, C: {}, D: {} };
      for (const n of nodes) n.child.stdin!.write(`${JSON.stringify(wiring[n.role])}\n`);
      for (const n of nodes) expect((await n.lines.next()).value).to.equal("WIRED");
      const client = createClient(GreeterDefinition, address("A"), { tracing: false });
      await client.sayHello({ name: "trace" }, { metadata: { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` } });
      client.$close();
      await waitFor(async () => ((await fx.console.traceStore!.get(traceId))?.length ?? 0) >= 7, { timeoutMs: 20_000, what: "7 spans at the console's receiver" });
    });
    after(async () => {
      for (const n of nodes) {
        if (n.child.exitCode === null) {
          const exited = new Promise((r) => n.child.once("exit", r));
          n.child.stdin!.end();
          await exited;
        }
      }
      await fx?.close();
    });

    it("finds the trace by service and method", async () => {
      await fx.page.goto(`${fx.console.url}#/traces`);
      await fx.page.locator("#trace-service").fill("chain-d");
      await fx.page.locator("#trace-method").fill("StreamHellos");
      await fx.page.locator(".trace-search button[type=submit]").click();
      await fx.page.locator(`.trace-row[data-trace-id="${traceId}"]`).waitFor();
      expect(await fx.page.locator(".trace-row").count()).to.equal(1);
    });

    it("shows the call tree with A's calls to B and C in parallel and B's call to D after them in depth", async () => {
      await fx.page.locator(`.trace-row[data-trace-id="${traceId}"]`).click();
      await fx.page.locator(".span-row").nth(6).waitFor();
      const rows = await fx.page.locator(".span-row").evaluateAll((els) =>
        els.map((e) => ({ service: e.getAttribute("data-service"), kind: e.getAttribute("data-kind"), name: e.getAttribute("data-name"), depth: Number(e.getAttribute("data-depth")), parallel: e.getAttribute("data-parallel"), stage: e.getAttribute("data-stage") })),
      );
      expect(rows).to.have.length(7);
      const aCalls = rows.filter((r) => r.service === "chain-a" && r.kind === "client");
      expect(aCalls).to.have.length(2);
      for (const c of aCalls) expect(c).to.deep.include({ depth: 1, parallel: "true", stage: "0" });
      const bServer = rows.find((r) => r.service === "chain-b" && r.kind === "server")!;
      const cServer = rows.find((r) => r.service === "chain-c" && r.kind === "server")!;
      expect(bServer.depth).to.equal(2);
      expect(cServer.depth).to.equal(2);
      const bToD = rows.find((r) => r.service === "chain-b" && r.kind === "client")!;
      expect(bToD).to.deep.include({ depth: 3, parallel: "false" });
      expect(bToD.name).to.match(/StreamHellos$/);
      expect(rows.find((r) => r.service === "chain-d")!.depth).to.equal(4);
      await screenshot(fx.page, "traces");
    });

    it("highlights a failed call with its status and message", async () => {
      const errTrace = randomBytes(16).toString("hex");
      const span = (id: string, parent: string | undefined, name: string, error: boolean) => ({
        traceId: errTrace,
        spanId: id,
        ...(parent ? { parentSpanId: parent } : {}),
        name,
        kind: 2,
        startTimeUnixNano: `${BigInt(Date.now()) * 1_000_000n}`,
        endTimeUnixNano: `${BigInt(Date.now() + 5) * 1_000_000n}`,
        status: error ? { code: 2, message: "stock service unavailable" } : { code: 0 },
        attributes: error ? [{ key: "rpc.grpc.status_code", value: { intValue: "14" } }] : [],
      });
      const res = await fetch(`${fx.console.url}v1/traces`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "shop" } }] }, scopeSpans: [{ spans: [span("aaaaaaaaaaaaaaaa", undefined, "/shop.Shop/Buy", false), span("bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa", "/stock.Stock/Reserve", true)] }] }] }),
      });
      expect(res.status).to.equal(200);
      await fx.page.locator("#trace-service").fill("");
      await fx.page.locator("#trace-method").fill("");
      await fx.page.locator("#trace-status").selectOption("error");
      await fx.page.locator(".trace-search button[type=submit]").click();
      await fx.page.locator(`.trace-row.error[data-trace-id="${errTrace}"]`).click();
      const failed = fx.page.locator('.span-row.error[data-span-id="bbbbbbbbbbbbbbbb"]');
      await failed.waitFor();
      expect(await failed.locator(".status").textContent()).to.include("14").and.include("stock service unavailable");
      expect(await fx.page.locator('.span-row[data-span-id="aaaaaaaaaaaaaaaa"]').getAttribute("class")).not.to.include("error");
    });

    it("shows a trace sent by the OpenTelemetry SDK's protobuf exporter, and refuses a malformed export with a clear status", async () => {
      const provider = new TracerProvider({
        resource: resourceFromAttributes({ "service.name": "proto-sender" }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${fx.console.url}v1/traces` }) })],
      });
      const span = provider.getTracer("console-pages").startSpan("/inventory.Inventory/Count", { kind: SpanKind.SERVER });
      span.end();
      await provider.shutdown();
      await fx.page.locator("#trace-service").fill("proto-sender");
      await fx.page.locator("#trace-status").selectOption("");
      await fx.page.locator(".trace-search button[type=submit]").click();
      await fx.page.locator(`.trace-row[data-trace-id="${span.spanContext().traceId}"]`).click();
      await fx.page.locator(`.span-row[data-span-id="${span.spanContext().spanId}"][data-name="/inventory.Inventory/Count"]`).waitFor();
      const bad = await fetch(`${fx.console.url}v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"nope":1}' });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as { error: string }).error).to.match(/resourceSpans/);
    });
  });
});
