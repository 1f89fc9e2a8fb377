import { expect } from "chai";
import { createServer, type Server } from "protomesh";
import { etcdRegistry } from "../registry/etcd/registry";
import { main } from "../cli/main";
import type { CliIo } from "../cli/command";
import { GreeterDefinition, startGreeter } from "./helpers/greeter";
import { greeterHandlers } from "../examples/greeter/service";
import { deadPort, uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";

function captureIo(env: NodeJS.ProcessEnv = {}): CliIo & { stdout: () => string; stderr: () => string } {
  let out = "";
  let err = "";
  return { cwd: process.cwd(), env, out: (t) => void (out += t), err: (t) => void (err += t), stdout: () => out, stderr: () => err };
}

describe("protomesh health", function () {
  this.timeout(30_000);
  const fixture = useEmbeddedEtcd();
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 200 })));
  });

  it("exits 0 and prints status: SERVING for a serving address, in both flag styles", async () => {
    const { server, address } = await startGreeter();
    servers.push(server);
    const io = captureIo();
    expect(await main(["health", address], io)).to.equal(0);
    expect(io.stdout()).to.equal("status: SERVING\n");
    const goStyle = captureIo();
    expect(await main(["health", `-addr=${address}`, "-service", GreeterDefinition.typeName, "-connect-timeout", "2s"], goStyle)).to.equal(0);
  });

  it("exits 4 for NOT_SERVING, 3 for an unknown service, 2 when nothing listens, 1 for bad flags", async () => {
    const { server, address } = await startGreeter();
    servers.push(server);
    server.health.set(GreeterDefinition.typeName, "NOT_SERVING");
    const notServing = captureIo();
    expect(await main(["health", address, "--service", GreeterDefinition.typeName], notServing)).to.equal(4);
    expect(notServing.stderr()).to.contain("NOT_SERVING");
    const unknown = captureIo();
    expect(await main(["health", address, "--service", "no.such.Service"], unknown)).to.equal(3);
    expect(unknown.stderr()).to.contain("NOT_FOUND");
    const dead = captureIo();
    expect(await main(["health", `127.0.0.1:${await deadPort()}`, "--connect-timeout", "300ms"], dead)).to.equal(2);
    expect(dead.stderr()).to.contain("failed to connect");
    const bad = captureIo();
    expect(await main(["health", address, "--rpc-timeout", "soon"], bad)).to.equal(1);
    expect(bad.stderr()).to.contain("bad duration");
    expect(await main(["health"], captureIo())).to.equal(1);
    // An unreadable TLS file: invalid arguments too, in one line (it escaped as an ENOENT stack).
    const noCa = captureIo();
    expect(await main(["health", address, "--tls", "--tls-ca-cert", "/no/such/ca.pem"], noCa)).to.equal(1);
    expect(noCa.stderr()).to.equal("protomesh health: failed to initialize tls credentials: cannot read --tls-ca-cert /no/such/ca.pem: ENOENT\n");
  });

  it("checks every instance of etcd:///service, prints a table, and fails if one is not SERVING", async () => {
    const namespace = uniqueNamespace();
    const registry = etcdRegistry({ endpoints: fixture.endpoints, namespace });
    try {
      for (const version of ["v1", "v2"]) {
        const server = createServer({ name: "greeter", registry, instance: { id: `g-${version}`, version, zone: "z1" } });
        server.add(GreeterDefinition, greeterHandlers(version));
        await server.listen("127.0.0.1:0");
        servers.push(server);
      }
      const env = { ETCD_ENDPOINTS: fixture.endpoints.join(","), PROTOMESH_NAMESPACE: namespace };
      const io = captureIo(env);
      expect(await main(["health", "etcd:///greeter"], io)).to.equal(0);
      const lines = io.stdout().trim().split("\n");
      expect(lines[0]).to.match(/^INSTANCE\s+ADDRESS\s+VERSION\s+ZONE\s+STATUS\s+TIME$/);
      expect(lines.slice(1, 3).map((l) => l.split(/\s+/)[0])).to.deep.equal(["g-v1", "g-v2"]);
      expect(lines.slice(1, 3).every((l) => /\bSERVING\b/.test(l))).to.equal(true);
      expect(lines[3]).to.equal("2/2 SERVING");

      servers[1]!.health.set("", "NOT_SERVING");
      const one = captureIo(env);
      expect(await main(["health", "etcd:///greeter"], one)).to.equal(4);
      expect(one.stdout()).to.match(/g-v2 .* NOT_SERVING/);
      expect(one.stdout()).to.contain("1/2 SERVING");

      const none = captureIo(env);
      expect(await main(["health", "etcd:///nobody"], none)).to.equal(2);
      expect(none.stderr()).to.contain("no instances");
    } finally {
      await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 200 })));
      await registry.close();
    }
  });
});
