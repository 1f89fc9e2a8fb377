import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { createServer, etcdRegistry } from "../index";
import { uniqueNamespace } from "./helpers/etcd";
import { run } from "./helpers/packed";

// `protomesh etcd`: the one command a newcomer runs to get etcd for their own app.

const CLI = path.resolve(__dirname, "..", "bin", "protomesh.js");

describe("protomesh etcd", function () {
  this.timeout(60_000);

  it("serves a member on a free port, prints the endpoints to export, a server registers there, and Ctrl-C stops it", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-etcd-cmd-"));
    const child = spawn(process.execPath, [CLI, "etcd", "--port", "0", "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", () => {
          const m = /^export ETCD_ENDPOINTS=(http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
          if (m) resolve(m[1]);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
      });
      const registry = etcdRegistry({ endpoints: [endpoint], namespace: uniqueNamespace() });
      const server = createServer({ name: "etcd-cmd", registry });
      await server.listen("127.0.0.1:0");
      expect(await registry.list("etcd-cmd")).to.have.length(1);
      await server.shutdown({ graceMs: 100 });
      await registry.close();
    } finally {
      child.kill("SIGINT");
    }
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).to.equal(0);
    expect(err).to.equal("");
    // A given data dir is kept for the next run.
    expect(fs.readdirSync(dataDir)).to.include("member");
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("refuses a busy port in one line", async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const result = await run(process.execPath, [CLI, "etcd", "--port", String(port)], os.tmpdir(), { timeoutMs: 30_000 });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.equal(`protomesh etcd: port ${port} is in use (another etcd?): pass --port N, or --port 0 for a free one\n`);
    } finally {
      busy.close();
    }
  });

  it("answers --help and rejects a bad port with usage", async () => {
    const help = await run(process.execPath, [CLI, "etcd", "--help"], os.tmpdir());
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^usage: protomesh etcd/);
    expect(help.stdout).to.include("Production is not this");
    const bad = await run(process.execPath, [CLI, "etcd", "--port", "http"], os.tmpdir());
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^protomesh etcd: --port must be a port number/);
  });
});
