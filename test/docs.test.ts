import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { expect } from "chai";
import type { Page } from "playwright-core";
import type { Server } from "protomesh";
import { main } from "../cli/main";
import { buildDescriptors, type ProjectDescriptors } from "../apidocs/descriptor-set";
import { startDocsServer, type DocsServer } from "../apidocs/try-server";
import { launchBrowser } from "./helpers/browser";
import { startBoth } from "./helpers/kitchen-sink";

const REPO = path.resolve(__dirname, "..");
const FIXTURE = path.join(__dirname, "fixtures", "docs-project");
const EXPECTED = path.join(FIXTURE, "expected");

async function docs(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(["docs", ...args], { cwd: REPO, env: process.env, out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe("protomesh docs", function () {
  this.timeout(30_000);

  describe("Markdown and HTML output", () => {
    let outDir: string;
    before(() => {
      outDir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-docs-test-"));
    });
    after(() => fs.rmSync(outDir, { recursive: true, force: true }));

    it("matches the golden files for the fixture project (UPDATE_GOLDEN=1 rewrites them)", async () => {
      const r = await docs(["--root", FIXTURE, "--out", outDir]);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/^protomesh docs: 2 \.proto files → /);
      for (const name of ["api.md", "index.html"]) {
        const actual = fs.readFileSync(path.join(outDir, name), "utf8");
        if (process.env.UPDATE_GOLDEN) {
          fs.mkdirSync(EXPECTED, { recursive: true });
          fs.writeFileSync(path.join(EXPECTED, name), actual);
        }
        expect(actual, name).to.equal(fs.readFileSync(path.join(EXPECTED, name), "utf8"));
      }
    });

    it("writes the same bytes on every run", async () => {
      const again = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-docs-again-"));
      try {
        expect((await docs(["--root", FIXTURE, "--out", again])).code).to.equal(0);
        for (const name of ["api.md", "index.html"]) {
          expect(fs.readFileSync(path.join(again, name), "utf8"), name).to.equal(fs.readFileSync(path.join(outDir, name), "utf8"));
        }
      } finally {
        fs.rmSync(again, { recursive: true, force: true });
      }
    });

    it("documents every call kind, deprecated marks, oneofs, maps, comments and links between types", () => {
      const md = fs.readFileSync(path.join(outDir, "api.md"), "utf8");
      for (const text of [
        "#### <a id=\"acme.shop.v1.Shop.PlaceOrder\"></a>`PlaceOrder` — unary",
        "`WatchOrders` — server streaming",
        "`Upload` — client streaming",
        "`Haggle` — bidirectional streaming",
        "- Request: stream of [`acme.shop.v1.Order.Line`](#acme.shop.v1.Order.Line)",
        "- Idempotency: `IDEMPOTENT`",
        "**Deprecated.**\n\nLegacy is going away.",
        "| `lines` | 2 | [`repeated acme.shop.v1.Order.Line`](#acme.shop.v1.Order.Line) |  |",
        "| `labels` | 6 | `map<string, string>` |  |",
        "| `placed_at` | 7 | `google.protobuf.Timestamp` |  |",
        "| `note` | 8 | `optional string` |  |",
        "| `old_field` | 9 | `string` | **Deprecated.** |",
        "Oneof `payment`: at most one of `card_token`, `credit` is set. How the order is paid.",
        "| `STATUS_PAID` | 2 | Paid in full. |",
        "| `STATUS_LEGACY` | 3 | **Deprecated.** |",
        "The shop sells things and tracks orders.",
      ]) {
        expect(md).to.include(text);
      }
      // Imports are referred to, not documented.
      expect(md).not.to.include("google/protobuf/timestamp.proto");
      const html = fs.readFileSync(path.join(outDir, "index.html"), "utf8");
      expect(html).not.to.match(/<(script|link|img)[^>]+(src|href)=/i);
      expect(html).to.include('<a href="#acme.shop.v1.Order.Line">acme.shop.v1.Order.Line</a>');
    });

    it("fails with one line when buf rejects the protos", async () => {
      const broken = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-docs-broken-"));
      try {
        fs.mkdirSync(path.join(broken, "proto"));
        fs.writeFileSync(path.join(broken, "proto", "bad.proto"), 'syntax = "proto3";\nmessage A { Missing m = 1; }\n');
        const r = await docs(["--root", broken]);
        expect(r.code).to.equal(1);
        expect(r.err).to.match(/^protomesh docs: buf build failed:\n.*bad\.proto:2:/);
      } finally {
        fs.rmSync(broken, { recursive: true, force: true });
      }
    });
  });

  describe("--serve: the page sends real calls", () => {
    let grpcServer: Server;
    let target: string;
    let descriptors: ProjectDescriptors;
    let docsServer: DocsServer;
    let browser: Awaited<ReturnType<typeof launchBrowser>>;
    let page: Page;

    before(async () => {
      ({ server: grpcServer, address: target } = await startBoth());
      descriptors = await buildDescriptors(REPO, process.env);
      docsServer = await startDocsServer({ descriptors, target });
      browser = await launchBrowser();
      page = await browser.context.newPage();
      await page.goto(docsServer.url);
    });
    after(async () => {
      await browser?.close();
      await docsServer?.close();
      await grpcServer?.shutdown();
    });

    /** Opens a method's "try it" panel, replaces the request, clicks Send, and returns the shown result. */
    async function tryMethod(method: string, request: string): Promise<{ state: string | null; text: string }> {
      const panel = page.locator(`details.try[data-method="${method}"]`);
      if (!(await panel.evaluate((el) => (el as unknown as { open: boolean }).open))) await panel.locator("summary").click();
      await panel.locator("textarea.try-request").fill(request);
      await panel.locator("button.try-send").click();
      const output = panel.locator('pre.try-response:is([data-state="ok"], [data-state="error"])');
      await output.waitFor({ timeout: 10_000 });
      return { state: await output.getAttribute("data-state"), text: (await output.textContent()) ?? "" };
    }

    it("shows the target it was started with and a JSON template per method", async () => {
      expect(await page.locator("#try-target").inputValue()).to.equal(target);
      const template = await page.locator('details.try[data-method="/examples.greeter.v1.Greeter/StreamHellos"] textarea').inputValue();
      expect(JSON.parse(template)).to.deep.equal({ name: "", count: 0, intervalMs: 0 });
    });

    it("sends a unary request with a click and shows the JSON response", async () => {
      const result = await tryMethod("/examples.greeter.v1.Greeter/SayHello", '{"name":"Chromium"}');
      expect(result.state).to.equal("ok");
      expect(JSON.parse(result.text)).to.deep.include({ message: "Hello, Chromium!", servedBy: "test" });
    });

    it("shows every message of a server stream and takes a JSON array for a client stream", async () => {
      const stream = await tryMethod("/protomesh.test.v1.KitchenSink/List", '{"count":2,"prefix":"web"}');
      expect(stream.text.replace(/\s+/g, "")).to.equal('{"id":"web-1"}{"id":"web-2"}');
      const collect = await tryMethod("/protomesh.test.v1.KitchenSink/Collect", '[{"id":"a"},{"id":"b"}]');
      expect(JSON.parse(collect.text)).to.deep.equal({ count: 2, ids: ["a", "b"], nothing: {} });
    });

    it("shows the status code name, message and details of a failed call", async () => {
      const result = await tryMethod("/examples.greeter.v1.Greeter/SayHello", '{"name":""}');
      expect(result.state).to.equal("error");
      expect(result.text).to.equal('INVALID_ARGUMENT: name is required\ndetails: {"field":"name"}');
    });

    it("sends the metadata typed into the page", async () => {
      await page.locator("#try-metadata").fill("x-user: web");
      const result = await tryMethod("/protomesh.test.v1.KitchenSink/Echo", '{"id":"whoami"}');
      expect(JSON.parse(result.text)).to.deep.equal({ id: "web" });
      await page.locator("#try-metadata").fill("");
    });

    it("refuses calls from other origins", async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${docsServer.url}api/call`, { method: "POST", headers: { "content-type": "application/json", origin: "http://evil.example" } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end(JSON.stringify({ method: "/examples.greeter.v1.Greeter/SayHello", requests: [{}] }));
      });
      expect(status).to.equal(403);
    });

    it("as a file, the page is read-only and says how to serve it", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-docs-static-"));
      try {
        expect((await docs(["--root", FIXTURE, "--out", dir])).code).to.equal(0);
        const staticPage = await browser.context.newPage();
        await staticPage.goto(pathToFileURL(path.join(dir, "index.html")).href);
        expect(await staticPage.locator("#try-note").textContent()).to.include("protomesh docs --serve");
        expect(await staticPage.locator("button.try-send").first().isDisabled()).to.equal(true);
        await staticPage.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
