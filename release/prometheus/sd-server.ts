/**
 * A Prometheus HTTP service-discovery endpoint served from the etcd registry:
 * `GET /targets` → every registered instance of the namespace as target groups
 * (`?service=a&service=b` narrows it). Prometheus polls it (`http_sd_configs`,
 * `refresh_interval`); each request reads the registry once, so the answer is never older than
 * the poll and the process keeps no state — run it beside Prometheus, as many as you like.
 * When etcd cannot answer the request fails (503): Prometheus then keeps the targets it had,
 * which is what a registry outage should do, rather than being told that nothing runs.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Etcd3 } from "etcd3";
import { decodeInstance } from "../../registry/etcd/keys";
import { readPrefix } from "../../registry/etcd/read-prefix";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import type { Logger } from "../../runtime/logger";
import { prometheusTargets } from "./sd-targets";

export interface PrometheusSdOptions {
  /** etcd client (every unary call on it should carry a deadline: use `createEtcdClient`). */
  readonly client: Etcd3;
  readonly namespace: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
  readonly logger: Logger;
}

export interface PrometheusSd {
  /** `http://host:port` — point `http_sd_configs[].url` at `${url}/targets`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Every instance of the namespace, by service; undecodable entries are skipped (and named). */
export async function registryInstances(client: Etcd3, namespace: string): Promise<{ instances: InstanceInfo[]; skipped: string[] }> {
  const root = `/protomesh/${namespace}/services/`;
  const { kvs } = await readPrefix(client, root);
  const instances: InstanceInfo[] = [];
  const skipped: string[] = [];
  for (const kv of kvs) {
    const rest = kv.key.toString().slice(root.length);
    const slash = rest.indexOf("/");
    const service = slash > 0 ? rest.slice(0, slash) : "";
    const decoded = decodeInstance({ prefix: `${root}${service}/`, service }, kv.key, kv.value);
    if (decoded.ok) instances.push(decoded.instance);
    else skipped.push(`${kv.key.toString()}: ${decoded.reason}`);
  }
  return { instances, skipped };
}

export async function startPrometheusSd(options: PrometheusSdOptions): Promise<PrometheusSd> {
  const { client, namespace, logger } = options;
  let lastFailure = "";
  const warned = new Set<string>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://sd");
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "GET /targets\n");
    if (url.pathname === "/healthz") return send(res, 200, "text/plain", "ok\n");
    if (url.pathname !== "/targets") return send(res, 404, "text/plain", "not found: try GET /targets[?service=NAME]\n");
    const services = new Set(url.searchParams.getAll("service"));
    let found;
    try {
      found = await registryInstances(client, namespace);
      if (lastFailure) logger.info("registry readable again", { namespace });
      lastFailure = "";
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // One line per kind of failure, not one per poll.
      if (reason !== lastFailure) logger.warn("cannot read the registry; Prometheus keeps its last targets", { namespace, reason });
      lastFailure = reason;
      return send(res, 503, "text/plain", `cannot read the registry: ${reason}\n`);
    }
    const chosen = services.size === 0 ? found.instances : found.instances.filter((i) => services.has(i.service));
    const { groups, skipped } = prometheusTargets(namespace, chosen);
    for (const s of [...found.skipped, ...skipped.map((id) => `${id}: no metrics_port in its registration`)]) {
      if (warned.has(s)) continue;
      if (warned.size > 10_000) warned.clear();
      warned.add(s);
      logger.warn("instance left out of the Prometheus targets", { reason: s });
    }
    send(res, 200, "application/json", JSON.stringify(groups));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error("service-discovery request failed", { err });
      if (!res.headersSent) send(res, 500, "text/plain", "internal error\n");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}
