import { expect } from "chai";
import { spawn } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Status, type RpcError, type Server } from "protomesh";
import { captureLogger } from "../helpers/capture-logger";
import { greeterClient, startGreeter } from "../helpers/greeter";
import { createTestPki, type KeyPair, type TestPki } from "./helpers/pki";
import { startSecureEtcd, type SecureEtcd } from "./helpers/secure-etcd";

const ROOT = path.join(__dirname, "..", "..");

/** Runs test/fixtures/tls-ip-client.ts; resolves with its exit code, stdout and stderr. */
function runClient(env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin", "run.js"), path.join(ROOT, "test", "fixtures", "tls-ip-client.ts"), ...args], {
      env: { ...process.env, ...env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

describe("security: TLS to an IP address sends no IP as the server name (no DEP0123 warning)", function () {
  this.timeout(90_000);
  let pki: TestPki;
  let clientPair: KeyPair;
  let etcd: SecureEtcd;
  let server: Server;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    pki = createTestPki();
    clientPair = pki.client("ip-client");
    const serverPair = pki.server("ip-server", ["127.0.0.1"]);
    etcd = await startSecureEtcd(pki, pki.server("etcd", ["127.0.0.1", "localhost"]), clientPair);
    const credentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: serverPair.key, cert_chain: serverPair.cert }], false);
    const started = await startGreeter({}, { credentials, logger: captureLogger() });
    server = started.server;
    env = { CA: pki.caFile, CLIENT_CERT: clientPair.certFile, CLIENT_KEY: clientPair.keyFile, GREETER: started.address, ETCD: etcd.endpoint };
  });
  after(async () => {
    await server?.shutdown({ graceMs: 100 });
    await etcd?.stop();
    pki?.remove();
  });

  it("a protomesh client and an etcd registry reach 127.0.0.1 over TLS, certificates checked against the IP, without the warning", async () => {
    const run = await runClient(env);
    expect(run.code, run.err).to.equal(0);
    expect(JSON.parse(run.out)).to.deep.equal({ greeting: "Hello, ip!", listed: 0 });
    expect(run.err).to.not.match(/DEP0123/);
  });

  it("still checks the certificate against the IP: one issued for a DNS name only is refused", async () => {
    const dnsOnly = pki.server("dns-only", ["localhost"]);
    const credentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: dnsOnly.key, cert_chain: dnsOnly.cert }], false);
    const other = await startGreeter({}, { credentials, logger: captureLogger() });
    const client = greeterClient(other.address, { credentials: grpc.credentials.createSsl(pki.ca) });
    try {
      const err = await client.sayHello({ name: "x" }, { deadlineMs: 5000 }).then(() => undefined, (e: RpcError) => e);
      expect(err?.code, err?.message).to.equal(Status.UNAVAILABLE);
      expect(err?.message).to.match(/IP: 127\.0\.0\.1 is not in the cert's list/);
    } finally {
      client.$close();
      await other.server.shutdown({ graceMs: 100 });
    }
  });

  it("(control) a bare grpc-js client to the same address prints it", async () => {
    const run = await runClient({ ...env, ETCD: "" }, ["--raw"]);
    expect(run.code, run.err).to.equal(0);
    expect(run.err).to.match(/DEP0123/);
  });
});
