/**
 * An HTTP endpoint that Prometheus scrapes: `GET /metrics` answers in the text
 * exposition format. Servers open one with their `metrics: { port }` option; processes
 * that only make calls open one with {@link serveMetrics}.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, type Registry } from "prom-client";
import { metricsRegistry } from "./metrics";

/** Options of {@link serveMetrics}. */
export interface MetricsEndpointOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind (default `0.0.0.0`: every interface, so a Prometheus elsewhere can scrape it; the page is public to whoever reaches it). */
  host?: string;
  /** URL path (default `/metrics`). */
  path?: string;
  /** Registries to expose, concatenated (default: protomesh's {@link metricsRegistry}). */
  registries?: Registry[];
  /** Also expose process metrics (CPU, memory, event-loop lag), added to the first registry (default true). */
  processMetrics?: boolean;
}

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  readonly port: number;
  /** The address it is bound to (`0.0.0.0` for every interface). */
  readonly host: string;
  /** `http://<bound address>:port/metrics`: what it is really bound to (`http://0.0.0.0:9464/metrics` by default). */
  readonly url: string;
  /** Stops serving (once every user of a shared port has closed it). */
  close(): Promise<void>;
}

/** Endpoints on fixed ports, shared so several servers in one process can name the same port. */
const shared = new Map<string, { endpoint: Promise<MetricsEndpoint>; users: number }>();
const withProcessMetrics = new WeakSet<Registry>();

/**
 * Serves metrics over HTTP until closed.
 *
 * @example
 *   const endpoint = await serveMetrics({ port: 9464 });
 *   // curl http://127.0.0.1:9464/metrics
 */
export function serveMetrics(options: MetricsEndpointOptions = {}): Promise<MetricsEndpoint> {
  const port = options.port ?? 0;
  const host = options.host ?? "0.0.0.0";
  if (!Number.isInteger(port) || port < 0 || port > 65535) return Promise.reject(new RangeError(`serveMetrics: port must be 0–65535, got ${port}`));
  if (port === 0) return open(options, host, 0);
  const key = `${host}:${port}`;
  let entry = shared.get(key);
  if (!entry) {
    const opened = open(options, host, port);
    entry = { endpoint: opened, users: 0 };
    shared.set(key, entry);
    opened.catch(() => shared.delete(key));
  }
  const current = entry;
  current.users++;
  return current.endpoint.then((endpoint) => {
    let closed = false;
    return {
      port: endpoint.port,
      host: endpoint.host,
      url: endpoint.url,
      close: async () => {
        if (closed) return;
        closed = true;
        if (--current.users > 0) return;
        shared.delete(key);
        await endpoint.close();
      },
    };
  });
}

async function open(options: MetricsEndpointOptions, host: string, port: number): Promise<MetricsEndpoint> {
  const registries = options.registries ?? [metricsRegistry];
  const first = registries[0];
  if (!first) throw new TypeError("serveMetrics: `registries` must name at least one registry");
  // Skip registries that already carry them (the caller may have collected them already).
  if (options.processMetrics !== false && !withProcessMetrics.has(first) && !first.getSingleMetric("process_cpu_user_seconds_total")) {
    withProcessMetrics.add(first);
    collectDefaultMetrics({ register: first });
  }
  const path = options.path ?? "/metrics";
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== path) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    Promise.all(registries.map((r) => r.metrics())).then(
      (texts) => res.writeHead(200, { "content-type": first.contentType }).end(texts.join("\n")),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics collection failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // A scrape endpoint should never keep a process alive on its own.
  server.unref();
  // Say where it really listens: a wildcard stays a wildcard, a name shows the address it resolved to.
  const { port: bound, address } = server.address() as AddressInfo;
  return {
    port: bound,
    host: address,
    url: `http://${address.includes(":") ? `[${address}]` : address}:${bound}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
