/**
 * A one-member etcd that only speaks TLS to clients and demands a client
 * certificate signed by the test CA (`--client-cert-auth`). Authentication
 * (users, roles) is switched on by the spec through the etcd API.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyPair, TestPki } from "./pki";

export interface SecureEtcd {
  /** `https://127.0.0.1:<port>` */
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startSecureEtcd(pki: TestPki, serverPair: KeyPair, clientPair: KeyPair): Promise<SecureEtcd> {
  const [clientPort, peerPort] = await freePorts(2);
  const dataDir = mkdtempSync(join(tmpdir(), "protomesh-etcd-tls-"));
  const endpoint = `https://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    process.env.ETCD_BIN ?? "etcd",
    [
      "--name=s1",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=s1=${peer}`,
      `--cert-file=${serverPair.certFile}`,
      `--key-file=${serverPair.keyFile}`,
      `--trusted-ca-file=${pki.caFile}`,
      "--client-cert-auth",
      "--logger=zap",
      "--log-level=error",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let output = "";
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  while (!(await healthy(endpoint, pki.ca, clientPair))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`TLS etcd did not become healthy:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { endpoint, stop };
}

function healthy(endpoint: string, ca: Buffer, pair: KeyPair): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${endpoint}/health`, { ca, cert: pair.cert, key: pair.key, timeout: 1000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(res.statusCode === 200 && body.includes("true")));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
