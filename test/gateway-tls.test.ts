import { expect } from "chai";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import type { Server } from "protomesh";
import { main } from "../cli/main";
import type { CliIo } from "../cli/command";
import { createGateway, GatewayTlsError, type Gateway } from "../gateway";
import { createTestPki, type TestPki } from "./faults/helpers/pki";
import { HttpGreeterDefinition, startHttpGreeter } from "./helpers/gateway";

/** GET over HTTPS, trusting only `ca`. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca }, (res) => {
      const protocol = (res.socket as TLSSocket).getProtocol() ?? "";
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), protocol }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { cwd: process.cwd(), env: {}, out: (t) => void (out += t), err: (t) => void (err += t) };
  return { code: await main(args, io), out, err };
}

describe("gateway HTTPS listener", function () {
  this.timeout(60_000);
  let pki: TestPki;
  let greeter: { server: Server; address: string };
  let gateway: Gateway | undefined;
  let descriptorSet: string;

  before(async () => {
    pki = createTestPki();
    greeter = await startHttpGreeter();
    descriptorSet = path.join(pki.dir, "none.binpb");
  });
  after(async () => {
    await gateway?.close();
    await greeter?.server.shutdown();
    pki?.remove();
  });

  it("serves a request over HTTPS with a certificate from a CA the client trusts", async () => {
    const server = pki.server("gateway", ["127.0.0.1", "localhost"]);
    gateway = await createGateway({ upstreams: [{ target: greeter.address, definitions: [HttpGreeterDefinition] }], tls: { cert: server.cert, key: server.key }, accessLog: false });
    const port = await gateway.listen(0);
    const res = await httpsGet(`https://127.0.0.1:${port}/v1/hello/Ada`, pki.ca);
    expect(res.status).to.equal(200);
    expect(res.protocol).to.match(/^TLSv1\.[23]$/);
    expect((JSON.parse(res.body) as { message: string }).message).to.equal("Hello, Ada!");
    // A client that does not trust the CA is refused at the handshake.
    try {
      await httpsGet(`https://127.0.0.1:${port}/v1/hello/Ada`, fs.readFileSync(path.join(pki.dir, "rogue-ca.crt")));
      expect.fail("the handshake should have failed");
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).to.match(/CERT|SIGNATURE|VERIFY/);
    }
    await gateway.close();
    gateway = undefined;
  });

  it("refuses at start a key that does not belong to the certificate, or input that is not PEM", async () => {
    const a = pki.server("gw-a", ["127.0.0.1"]);
    const b = pki.server("gw-b", ["127.0.0.1"]);
    const upstreams = [{ target: greeter.address, definitions: [HttpGreeterDefinition] }];
    for (const [tls, message] of [
      [{ cert: a.cert, key: b.key }, "the TLS key does not belong to the certificate"],
      [{ cert: "hello", key: a.key }, "not a PEM certificate"],
      [{ cert: a.cert, key: a.cert }, "not a PEM private key"],
    ] as const) {
      try {
        await createGateway({ upstreams, tls, accessLog: false });
        expect.fail(`createGateway should have failed with ${message}`);
      } catch (err) {
        expect(err).to.be.instanceOf(GatewayTlsError);
        expect((err as Error).message).to.contain(message);
      }
    }
  });

  it("the CLI fails at start with a clear error for a missing file or a mismatched pair (exit 1)", async () => {
    const a = pki.server("cli-a", ["127.0.0.1"]);
    const b = pki.server("cli-b", ["127.0.0.1"]);
    const missing = path.join(pki.dir, "no-such.crt");
    const base = ["gateway", "--descriptor-set", descriptorSet, "--target", greeter.address, "--port", "0"];
    fs.writeFileSync(descriptorSet, Buffer.alloc(0));
    const gone = await cli([...base, "--tls-cert", missing, "--tls-key", a.keyFile]);
    expect(gone.code).to.equal(1);
    expect(gone.err).to.contain(`cannot read the TLS certificate ${missing}: no such file`);
    const mismatch = await cli([...base, "--tls-cert", a.certFile, "--tls-key", b.keyFile]);
    expect(mismatch.code).to.equal(1);
    expect(mismatch.err).to.contain("the TLS key does not belong to the certificate");
    const half = await cli([...base, "--tls-cert", a.certFile]);
    expect(half.code).to.equal(2);
    expect(half.err).to.contain("--tls-cert and --tls-key go together");
  });
});
