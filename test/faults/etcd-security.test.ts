import { expect } from "chai";
import { Etcd3 } from "etcd3";
import { createClient, etcdRegistry, Status, type EtcdRegistry, type EtcdRegistryOptions, type RpcError, type Server } from "protomesh";
import { captureLogger, type CapturedLogger } from "../helpers/capture-logger";
import { uniqueNamespace } from "../helpers/etcd";
import { GreeterDefinition, startGreeter } from "../helpers/greeter";
import { createTestPki, type KeyPair, type TestPki } from "./helpers/pki";
import { startSecureEtcd, type SecureEtcd } from "./helpers/secure-etcd";

describe("security: etcd over mutual TLS, then with authentication and per-namespace roles", function () {
  this.timeout(180_000);
  let pki: TestPki;
  let etcd: SecureEtcd;
  let clientPair: KeyPair;
  let admin: Etcd3;
  const mine = uniqueNamespace();
  const theirs = uniqueNamespace();
  const registries: EtcdRegistry[] = [];
  const servers: Server[] = [];

  before(async function () {
    this.timeout(30_000);
    pki = createTestPki();
    // The client certificate's common name is no etcd user: once auth is on, it proves only "signed by our CA".
    clientPair = pki.client("protomesh-client");
    const adminPair = pki.client("admin-client");
    etcd = await startSecureEtcd(pki, pki.server("etcd", ["127.0.0.1", "localhost"]), clientPair);
    admin = new Etcd3({
      hosts: [etcd.endpoint],
      credentials: { rootCertificate: pki.ca, certChain: adminPair.cert, privateKey: adminPair.key },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }),
    });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 100 })));
    await Promise.all(registries.map((r) => r.close().catch(() => undefined)));
    admin?.close();
    await etcd?.stop();
    pki?.remove();
  });

  const tls = () => ({ ca: pki.ca, cert: clientPair.cert, key: clientPair.key });

  function registry(namespace: string, options: Partial<EtcdRegistryOptions> = {}): EtcdRegistry & { logger: CapturedLogger } {
    const logger = captureLogger();
    const r = etcdRegistry({ endpoints: [etcd.endpoint], namespace, ttlSeconds: 3, callTimeoutMs: 1500, registerWaitMs: 3000, tls: tls(), logger, ...options });
    registries.push(r);
    return Object.assign(r, { logger });
  }

  /** Registers a greeter through `serverRegistry` and calls it through `etcd:///greeter` via `clientRegistry`. */
  async function registerAndCall(serverRegistry: EtcdRegistry, clientRegistry: EtcdRegistry): Promise<string> {
    const { server } = await startGreeter({}, { name: "greeter", registry: serverRegistry, logger: captureLogger() });
    servers.push(server);
    const client = createClient(GreeterDefinition, "etcd:///greeter", { discovery: clientRegistry });
    try {
      return (await client.sayHello({ name: "etcd" }, { deadlineMs: 5000 })).message;
    } finally {
      client.$close();
    }
  }

  it("registers and discovers over mutual TLS", async () => {
    expect(await registerAndCall(registry(mine), registry(mine))).to.equal("Hello, etcd!");
  });

  it("refuses a registry without a client certificate, or one that trusts another CA", async () => {
    const noCert = registry(mine, { tls: { ca: pki.ca } });
    const err1 = await noCert.list("greeter").then(() => undefined, (e: Error) => e);
    expect(err1, "listing without a client certificate").to.be.instanceOf(Error);
    expect(err1!.message).to.match(/UNAVAILABLE.*bad certificate/s);
    const otherCa = registry(mine, { tls: { ca: pki.rogueClient("x").cert, cert: clientPair.cert, key: clientPair.key } });
    const err2 = await otherCa.list("greeter").then(() => undefined, (e: Error) => e);
    expect(err2, "listing with an untrusted server certificate").to.be.instanceOf(Error);
    expect(err2!.message).to.match(/UNAVAILABLE.*verify/s);
    // A plaintext client gets nowhere either.
    const plain = etcdRegistry({ endpoints: [etcd.endpoint.replace("https://", "http://")], namespace: mine, logger: captureLogger(), callTimeoutMs: 1500 });
    registries.push(plain);
    expect(await plain.list("greeter").then(() => undefined, (e: Error) => e)).to.be.instanceOf(Error);
  });

  it("fails register() and server.listen() at once, with the reason, when TLS towards etcd fails", async () => {
    // Before, both retried for ever: listen() resolved after registerWaitMs and the server served unregistered.
    const noCert = registry(mine, { tls: { ca: pki.ca }, registerWaitMs: 30_000 });
    const err1 = await startGreeter({}, { name: "greeter", registry: noCert, logger: captureLogger() }).then(({ server }) => (servers.push(server), undefined), (e: Error) => e);
    expect(err1, "listen() without a client certificate").to.be.instanceOf(Error);
    expect(err1!.message).to.match(/^TLS towards etcd failed, cannot register \/protomesh\/.+\/services\/greeter\/.+: .*(bad certificate|certificate required)/);
    expect(err1!.message).to.match(/tls\.cert and tls\.key/);
    const [line, ...more] = noCert.logger.matching("TLS towards etcd failed; not retrying");
    expect(more).to.have.length(0);
    expect(line?.level).to.equal("error");
    expect(line?.fields.reason, "the reason, as one line").to.be.a("string").and.not.match(/\n\s+at /);
    expect(line?.fields).to.not.have.property("err");

    const otherCa = registry(mine, { tls: { ca: pki.rogueClient("y").cert, cert: clientPair.cert, key: clientPair.key }, registerWaitMs: 30_000 });
    const err2 = await otherCa.register({ service: "greeter", address: "127.0.0.1:5002", id: "untrusting" }).then(() => undefined, (e: Error) => e);
    expect(err2, "register() with a CA that did not sign etcd's certificate").to.be.instanceOf(Error);
    expect(err2!.message).to.match(/^TLS towards etcd failed.*(verify|self[- ]signed|issuer)/);

    // Discovery through it says TLS, not "unreachable".
    const channel = createClient(GreeterDefinition, "etcd:///greeter", { discovery: otherCa });
    const callErr = await channel.sayHello({ name: "x" }, { deadlineMs: 5000 }).then(() => undefined, (e: RpcError) => e);
    channel.$close();
    expect(callErr?.code).to.equal(Status.UNAVAILABLE);
    expect(callErr?.message).to.match(/TLS towards etcd failed/).and.not.match(/unreachable/);
  });

  describe("with authentication on", () => {
    before(async () => {
      await admin.user("root").create("root-secret");
      await admin.role("root").create();
      await admin.user("root").addRole("root");
      // One role per namespace, limited to that namespace's prefix.
      await admin.role(`ns-${mine}`).create();
      await admin.role(`ns-${mine}`).grant({ permission: "Readwrite", range: admin.range({ prefix: `/protomesh/${mine}/` }) });
      await admin.user("svc-mine").create("mine-secret");
      await admin.user("svc-mine").addRole(`ns-${mine}`);
      await admin.auth.authEnable();
    });

    const asMine = (namespace: string, password = "mine-secret") => registry(namespace, { auth: { username: "svc-mine", password } });

    it("registers and discovers as a user whose role covers the namespace's prefix", async () => {
      expect(await registerAndCall(asMine(mine), asMine(mine))).to.equal("Hello, etcd!");
    });

    it("cannot register into another namespace: a clear error, and the process carries on", async () => {
      const intruder = asMine(theirs);
      const started = Date.now();
      const err = await intruder.register({ service: "greeter", address: "127.0.0.1:5000", id: "intruder" }).then(() => undefined, (e: Error) => e);
      expect(err, "register() into a namespace the role does not cover").to.be.instanceOf(Error);
      expect(err!.message).to.match(/refused to register \/protomesh\/.+\/services\/greeter\/intruder/).and.match(/permission denied/);
      expect(Date.now() - started, "refused at once, not after a wait").to.be.below(3000);
      expect(intruder.logger.matching("etcd refused the registration")).to.have.length(1);
      const listErr = await intruder.list("greeter").then(() => undefined, (e: Error) => e);
      expect(listErr?.message).to.match(/permission denied/);
      const channel = createClient(GreeterDefinition, "etcd:///greeter", { discovery: intruder });
      const callErr = await channel.sayHello({ name: "x" }, { deadlineMs: 5000 }).then(() => undefined, (e: RpcError) => e);
      channel.$close();
      expect(callErr?.code, "a channel resolving through a namespace it may not read").to.equal(Status.UNAVAILABLE);
      expect(callErr?.message).to.match(/etcd refused access: .*permission denied/).and.not.match(/unreachable/);
      expect(intruder.logger.matching("etcd refused to list instances (permission denied)")).to.have.length(1);
      // Nothing was written, and this process's rightful registration still works.
      const root = new Etcd3({
        hosts: [etcd.endpoint],
        credentials: { rootCertificate: pki.ca, certChain: clientPair.cert, privateKey: clientPair.key },
        auth: { username: "root", password: "root-secret" },
      });
      try {
        expect(await root.getAll().prefix(`/protomesh/${theirs}/`).keys()).to.deep.equal([]);
      } finally {
        root.close();
      }
      expect(await registerAndCall(asMine(mine), asMine(mine))).to.equal("Hello, etcd!");
    });

    it("refuses a wrong password, and a client certificate alone, with clear errors", async () => {
      const wrong = asMine(mine, "not-the-password");
      const err = await wrong.register({ service: "greeter", address: "127.0.0.1:5001", id: "wrong-pw" }).then(() => undefined, (e: Error) => e);
      expect(err?.message).to.match(/refused to register/).and.match(/authentication failed/);
      const certOnly = registry(mine);
      const listErr = await certOnly.list("greeter").then(() => undefined, (e: Error) => e);
      expect(listErr?.message, "a certificate whose name is no etcd user").to.match(/permission denied/);
    });
  });
});
