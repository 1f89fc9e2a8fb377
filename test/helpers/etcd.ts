/**
 * Real etcd for integration specs: `useEmbeddedEtcd()` inside a `describe`
 * starts a private etcd before the suite and stops it (removing its temp data
 * dir) after. `rawEtcd()` gives a plain etcd3 client for changing etcd by hand.
 */
import { randomBytes } from "node:crypto";
import { Etcd3 } from "etcd3";
import { startEmbeddedEtcd, type EmbeddedEtcd, type EmbeddedEtcdOptions } from "../../registry/etcd/embedded";

export interface EtcdFixture {
  /** The running etcd (valid inside tests and hooks). */
  readonly etcd: EmbeddedEtcd;
  readonly endpoints: string[];
  /** A plain etcd3 client on `endpoints` (default: all members), closed after the suite. */
  rawEtcd(endpoints?: string[]): Etcd3;
}

/** Registers before/after hooks that start and stop an embedded etcd. */
export function useEmbeddedEtcd(options: EmbeddedEtcdOptions = {}): EtcdFixture {
  let etcd: EmbeddedEtcd | undefined;
  const clients: Etcd3[] = [];
  before(async function () {
    this.timeout(30_000);
    etcd = await startEmbeddedEtcd(options);
  });
  after(async function () {
    this.timeout(15_000);
    for (const c of clients.splice(0)) c.close();
    await etcd?.stop();
    etcd = undefined;
  });
  const fixture: EtcdFixture = {
    get etcd() {
      if (!etcd) throw new Error("embedded etcd is not running (use it inside tests or hooks)");
      return etcd;
    },
    get endpoints() {
      return fixture.etcd.endpoints;
    },
    rawEtcd(endpoints = fixture.endpoints) {
      const client = new Etcd3({ hosts: endpoints, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }) });
      clients.push(client);
      return client;
    },
  };
  return fixture;
}

/** A fresh registry namespace, so specs sharing one etcd never see each other's keys. */
export function uniqueNamespace(): string {
  return `t-${randomBytes(4).toString("hex")}`;
}

/** A loopback port with nothing listening (etcd "unreachable"). */
export async function deadPort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
