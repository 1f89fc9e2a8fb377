import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { createClient, etcdRegistry, Status, type ClientOptions, type EtcdRegistry, type RpcError, type Server } from "protomesh";
import { captureLogger } from "../helpers/capture-logger";
import { uniqueNamespace, useEmbeddedEtcd } from "../helpers/etcd";
import { GreeterDefinition, greeterClient, startGreeter } from "../helpers/greeter";
import { createTestPki, type KeyPair, type TestPki } from "./helpers/pki";

async function callOutcome(client: ReturnType<typeof greeterClient>): Promise<{ code?: number; message?: string; reply?: string }> {
  try {
    return { reply: (await client.sayHello({ name: "tls" }, { deadlineMs: 3000 })).message };
  } catch (err) {
    return { code: (err as RpcError).code, message: (err as RpcError).message };
  } finally {
    client.$close();
  }
}

describe("security: TLS and mutual TLS between services", function () {
  this.timeout(30_000);
  let pki: TestPki;
  let serverPair: KeyPair;
  let clientPair: KeyPair;
  const servers: Server[] = [];
  before(() => {
    pki = createTestPki();
    serverPair = pki.server("greeter-server", ["127.0.0.1", "localhost", "greeter"]);
    clientPair = pki.client("greeter-client");
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 100 })));
    pki.remove();
  });

  async function tlsServer(checkClientCertificate: boolean, pair = serverPair): Promise<number> {
    const credentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: pair.key, cert_chain: pair.cert }], checkClientCertificate);
    const { server, address } = await startGreeter({}, { credentials, logger: captureLogger() });
    servers.push(server);
    return Number(address.split(":").pop());
  }

  const trusting = (options: { withCert?: KeyPair; ca?: Buffer | null } = {}) =>
    grpc.credentials.createSsl(options.ca === null ? undefined : (options.ca ?? pki.ca), options.withCert?.key, options.withCert?.cert);

  describe("TLS (the server proves who it is)", () => {
    let port: number;
    before(async () => {
      port = await tlsServer(false);
    });

    it("serves a client that trusts the CA, by DNS name and by IP address", async () => {
      expect((await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting() }))).reply).to.equal("Hello, tls!");
      expect((await callOutcome(greeterClient(`127.0.0.1:${port}`, { credentials: trusting() }))).reply).to.equal("Hello, tls!");
    });

    it("fails a client that expects another server name", async () => {
      const res = await callOutcome(
        greeterClient(`127.0.0.1:${port}`, { credentials: trusting(), channelOptions: { "grpc.ssl_target_name_override": "billing.internal", "grpc.default_authority": "billing.internal" } }),
      );
      expect(res.code, res.message).to.equal(Status.UNAVAILABLE);
      expect(res.message).to.match(/billing\.internal|altnames|certificate/i);
    });

    it("fails a client that does not trust the CA, and a plaintext client", async () => {
      const systemRoots = await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting({ ca: null }) }));
      expect(systemRoots.code, systemRoots.message).to.equal(Status.UNAVAILABLE);
      expect(systemRoots.message).to.match(/certificate/);
      const plaintext = await callOutcome(greeterClient(`localhost:${port}`));
      expect(plaintext.code, plaintext.message).to.equal(Status.UNAVAILABLE);
    });
  });

  describe("mutual TLS (the client proves who it is too)", () => {
    let port: number;
    before(async () => {
      port = await tlsServer(true);
    });

    it("serves a client with a certificate from the trusted CA", async () => {
      const res = await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting({ withCert: clientPair }) }));
      expect(res.reply, res.message).to.equal("Hello, tls!");
    });

    it("refuses a client without a certificate, and one whose certificate the CA did not sign, saying why", async () => {
      const none = await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting() }));
      expect(none.code, none.message).to.equal(Status.UNAUTHENTICATED);
      expect(none.message).to.match(/client certificate refused: certificate required/);
      const rogue = await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting({ withCert: pki.rogueClient("intruder") }) }));
      expect(rogue.code, rogue.message).to.equal(Status.UNAUTHENTICATED);
      expect(rogue.message).to.match(/client certificate refused: not signed by a CA this server trusts/);
      // Refusals cost the server nothing: it still serves its rightful clients.
      const ok = await callOutcome(greeterClient(`localhost:${port}`, { credentials: trusting({ withCert: clientPair }) }));
      expect(ok.reply, ok.message).to.equal("Hello, tls!");
    });
  });

  describe("through the registry (etcd:///greeter)", () => {
    const fixture = useEmbeddedEtcd();
    const registries: EtcdRegistry[] = [];
    after(() => Promise.all(registries.map((r) => r.close())));

    async function registeredTlsServer(namespace: string, pair: KeyPair): Promise<void> {
      const registry = etcdRegistry({ endpoints: fixture.endpoints, namespace, ttlSeconds: 3, logger: captureLogger() });
      registries.push(registry);
      const credentials = grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: pair.key, cert_chain: pair.cert }], true);
      const { server } = await startGreeter({}, { name: "greeter", registry, credentials, logger: captureLogger() });
      servers.push(server);
    }

    function registryClient(namespace: string, options: ClientOptions) {
      const discovery = etcdRegistry({ endpoints: fixture.endpoints, namespace, logger: captureLogger() });
      registries.push(discovery);
      return createClient(GreeterDefinition, "etcd:///greeter", { discovery, ...options });
    }

    it("verifies the server certificate against the service name", async () => {
      // The channel's authority is the service name, so that is the name the certificate must carry.
      const namespace = uniqueNamespace();
      await registeredTlsServer(namespace, serverPair);
      const res = await callOutcome(registryClient(namespace, { credentials: trusting({ withCert: clientPair }) }));
      expect(res.reply, res.message).to.equal("Hello, tls!");
    });

    it("fails when the certificate does not name the service", async () => {
      const namespace = uniqueNamespace();
      await registeredTlsServer(namespace, pki.server("ip-only", ["127.0.0.1", "localhost"]));
      const res = await callOutcome(registryClient(namespace, { credentials: trusting({ withCert: clientPair }) }));
      expect(res.code, res.message).to.equal(Status.UNAVAILABLE);
      expect(res.message).to.match(/greeter.* altnames/);
    });
  });
});
