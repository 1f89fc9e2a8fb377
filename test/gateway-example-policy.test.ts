import { expect } from "chai";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import type { Server } from "protomesh";
import type { Gateway } from "../gateway";
import { validatePolicy } from "../gateway/policy-validate";
import { startGateway, startHttpGreeter } from "./helpers/gateway";

const ROOT = path.resolve(__dirname, "..");
const EXAMPLE = path.join(ROOT, "examples", "gateway");

/** Mints a token with the example's script, as its README does. */
async function token(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, "bin", "run.js"), path.join(EXAMPLE, "token.ts"), ...args], { cwd: ROOT });
  return stdout.trim();
}

describe("examples/gateway: policy.yaml and token.ts, as its README uses them", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };

  before(async () => {
    greeter = await startHttpGreeter({}, "example");
    gw = await startGateway(greeter.address, { policy: validatePolicy(parse(fs.readFileSync(path.join(EXAMPLE, "policy.yaml"), "utf8"))) });
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  it("validates, with a canary rule for http-greeter", () => {
    expect(Object.keys(gw.gateway.policy.value.traffic ?? {})).to.deep.equal(["http-greeter"]);
  });

  it("guards Echo: 401 without a token, 200 with the echo scope (sub as x-user-id), 403 without it; other routes stay open", async () => {
    const url = `${gw.url}/v1/echo/e1/lbl`;
    const none = await fetch(url);
    expect(none.status).to.equal(401);
    expect(none.headers.get("www-authenticate")).to.match(/^Bearer realm="protomesh"/);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${await token("ada", "echo")}` } });
    expect(ok.status).to.equal(200);
    expect(await ok.json()).to.include({ id: "e1", shownAs: "user:ada" });
    expect((await fetch(url, { headers: { authorization: `Bearer ${await token("bo", "read")}` } })).status).to.equal(403);
    expect((await fetch(`${gw.url}/v1/hello/Ada`)).status).to.equal(200);
  });
});
