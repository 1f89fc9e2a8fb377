import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { startConsole, type RunningConsole } from "../console";
import { openConsole, type ConsoleFixture } from "./helpers/console";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { run } from "./helpers/packed";

describe("console: sign-in, roles, cookies and CSRF", function () {
  this.timeout(60_000);
  const fixture = useEmbeddedEtcd();

  it("refuses to bind a non-loopback address without sign-in", async () => {
    let error: Error | undefined;
    await startConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), host: "0.0.0.0", signIn: "none", port: 0 }).then((c) => c.close(), (e: Error) => (error = e));
    expect(error?.message).to.match(/not loopback: that needs sign-in/);
  });

  it("refuses a Jaeger or gateway address that is not an http(s) URL, before opening anything", async () => {
    for (const [options, message] of [
      [{ traces: { jaeger: "jaeger:16686" } }, /the Jaeger URL must be http:\/\/ or https:\/\/, got "jaeger:16686"/],
      [{ traces: { jaeger: "not a url" } }, /the Jaeger URL "not a url" is not a URL: give one such as http:\/\/jaeger:16686/],
      [{ gateway: "127.0.0.1:8080" }, /the gateway URL "127\.0\.0\.1:8080" is not a URL: give one such as http:\/\/127\.0\.0\.1:8080/],
    ] as const) {
      let error: Error | undefined;
      await startConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), port: 0, ...options }).then((c) => c.close(), (e: Error) => (error = e));
      expect(error?.message).to.match(message);
    }
  });

  it("refuses to start with sign-in when no user exists, saying how to add one", async () => {
    let error: Error | undefined;
    await startConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), host: "0.0.0.0", port: 0 }).then((c) => c.close(), (e: Error) => (error = e));
    expect(error?.message).to.match(/protomesh console user add NAME --role admin/);
  });

  describe("bound to all interfaces, with users in etcd", () => {
    const namespace = uniqueNamespace();
    let fx: ConsoleFixture;
    let url: string;

    before(async () => {
      const seed: RunningConsole = await startConsole({ endpoints: fixture.endpoints, namespace, port: 0 });
      await seed.users.put("ada", "editor", "correct horse");
      await seed.users.put("val", "viewer", "battery staple");
      await seed.close();
      fx = await openConsole({ endpoints: fixture.endpoints, namespace, host: "0.0.0.0" });
      url = `http://127.0.0.1:${fx.console.port}/`;
    });
    after(async () => fx?.close());

    async function signIn(user: string, password: string): Promise<{ status: number; cookie?: string; csrf?: string; setCookie?: string; body: Record<string, unknown> }> {
      const res = await fetch(`${url}api/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, password }) });
      const body = (await res.json()) as Record<string, unknown>;
      const setCookie = res.headers.get("set-cookie") ?? undefined;
      return { status: res.status, setCookie, cookie: setCookie?.split(";")[0], csrf: body.csrf as string | undefined, body };
    }

    it("answers 401 to API calls without a session", async () => {
      expect((await fetch(`${url}api/services`)).status).to.equal(401);
      expect((await fetch(`${url}api/session`)).status).to.equal(401);
    });

    it("signs in with the right password only, and sets an HttpOnly SameSite=Strict cookie", async () => {
      expect((await signIn("ada", "wrong password")).status).to.equal(401);
      expect((await signIn("nobody", "correct horse")).status).to.equal(401);
      const ok = await signIn("ada", "correct horse");
      expect(ok.status).to.equal(200);
      expect(ok.setCookie).to.match(/HttpOnly/).and.match(/SameSite=Strict/);
      expect(ok.body).to.deep.include({ user: "ada", role: "editor" });
    });

    it("never sends etcd endpoints or credentials to the browser", async () => {
      const ok = await signIn("ada", "correct horse");
      const text = JSON.stringify(ok.body) + (await (await fetch(`${url}api/services`, { headers: { cookie: ok.cookie! } })).text());
      for (const endpoint of fixture.endpoints) expect(text).not.to.include(endpoint.replace(/^https?:\/\//, ""));
    });

    it("refuses writes without the CSRF token, or from another origin", async () => {
      const ok = await signIn("ada", "correct horse");
      const write = (headers: Record<string, string>) =>
        fetch(`${url}api/config/prod/app/rollback`, { method: "POST", headers: { cookie: ok.cookie!, "content-type": "application/json", ...headers }, body: '{"version":1}' });
      expect((await write({})).status).to.equal(403);
      expect((await write({ "x-csrf-token": "forged" })).status).to.equal(403);
      expect((await write({ "x-csrf-token": ok.csrf!, origin: "http://evil.example" })).status).to.equal(403);
      // With the token the request gets through to the config center (which has no such version).
      expect((await write({ "x-csrf-token": ok.csrf! })).status).to.equal(400);
    });

    it("lets a viewer read but not change", async () => {
      const v = await signIn("val", "battery staple");
      expect((await fetch(`${url}api/services`, { headers: { cookie: v.cookie! } })).status).to.equal(200);
      const res = await fetch(`${url}api/instances/greeter/x`, { method: "POST", headers: { cookie: v.cookie!, "content-type": "application/json", "x-csrf-token": v.csrf! }, body: '{"weight":2}' });
      expect(res.status).to.equal(403);
      expect(((await res.json()) as { error: string }).error).to.match(/needs the editor role/);
    });

    it("keeps a viewer from changing traffic rules, gateway policies and transactions", async () => {
      const v = await signIn("val", "battery staple");
      expect((await fetch(`${url}api/traffic/services`, { headers: { cookie: v.cookie! } })).status).to.equal(200);
      const writes = ["api/traffic/rules/greeter/apply", "api/traffic/rules/greeter/rollback", "api/traffic/rules/greeter/remove", "api/gateway/policies/default/default/apply", "api/gateway/policies/default/default/rollback", "api/transactions/g1/retry", "api/transactions/g1/stop"];
      for (const path of writes) {
        const res = await fetch(`${url}${path}`, { method: "POST", headers: { cookie: v.cookie!, "content-type": "application/json", "x-csrf-token": v.csrf! }, body: '{"text":"{}","version":1}' });
        expect(res.status, path).to.equal(403);
        expect(((await res.json()) as { error: string }).error, path).to.match(/needs the editor role/);
      }
    });

    it("signs in through the page, and signs out", async () => {
      await fx.page.goto(url);
      await fx.page.locator("form.login input[name=user]").fill("ada");
      await fx.page.locator("form.login input[name=password]").fill("correct horse");
      await fx.page.locator("form.login button[type=submit]").click();
      await fx.page.locator('[data-testid="who"]').waitFor();
      expect(await fx.page.locator('[data-testid="who"]').textContent()).to.include("ada (editor)");
      const cookies = await fx.browser.context.cookies(url);
      expect(cookies.find((c) => c.name === "protomesh_console")).to.deep.include({ httpOnly: true, sameSite: "Strict" });
      await fx.page.locator('[data-testid="who"] button').click();
      await fx.page.locator("form.login").waitFor();
    });
  });

  describe("`protomesh console user`", () => {
    const CLI = path.resolve(__dirname, "..", "bin", "protomesh.js");
    const namespace = uniqueNamespace();
    const user = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, [CLI, "console", "user", ...args], os.tmpdir(), {
        env: { ETCD_ENDPOINTS: fixture.endpoints.join(","), PROTOMESH_NAMESPACE: namespace, PROTOMESH_CONSOLE_PASSWORD: "long enough", ...env },
      });

    it("adds, lists and removes users; removing a missing one fails on stderr", async () => {
      const added = await user(["add", "ada", "--role", "admin"]);
      expect(added.code, added.stderr).to.equal(0);
      expect(added.stdout).to.equal("protomesh console: user ada (admin) saved\n");
      expect((await user(["list"])).stdout).to.match(/^ada\tadmin\t/);
      const removed = await user(["remove", "ada"]);
      expect(removed.code, removed.stderr).to.equal(0);
      const again = await user(["remove", "ada"]);
      expect(again.code).to.equal(1);
      expect(again.stdout).to.equal("");
      expect(again.stderr).to.equal("protomesh console: no user ada\n");
    });

    it("tells usage mistakes (exit 2) before calling etcd", async () => {
      // An unreachable etcd: had the command called it, the answer would be exit 1.
      const dead = { ETCD_ENDPOINTS: `127.0.0.1:${await deadPort()}` };
      const cases: Array<[string[], RegExp]> = [
        [[], /user needs a verb: add, remove or list/],
        [["nosuch", "ada"], /unknown user verb "nosuch": add, remove or list/],
        [["add"], /user add takes one NAME/],
        [["add", "ada"], /user add needs --role viewer\|editor\|admin/],
        [["add", "ada", "--role", "root"], /user add needs --role viewer\|editor\|admin/],
        [["remove"], /user remove takes one NAME/],
        [["remove", "ada", "--role", "admin"], /--role goes with user add/],
        [["list", "ada"], /user list takes no NAME/],
      ];
      for (const [args, message] of cases) {
        const r = await user(args, dead);
        expect(r.code, args.join(" ")).to.equal(2);
        expect(r.stderr.split("\n")[0], args.join(" ")).to.match(message);
        expect(r.stderr).not.to.match(/\n\s+at /);
      }
    });
  });
});
