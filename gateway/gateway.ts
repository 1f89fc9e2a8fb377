import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Etcd3 } from "etcd3";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "../registry/etcd/options";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd/registry";
import type { BalancerOption, OutlierDetectionOption } from "../runtime/balancing/service-config";
import { Status } from "../runtime/errors";
import { getLogger, type Logger } from "../runtime/logger";
import { ApiKeyCache, keysPrefix } from "./api-keys";
import { JwtVerifier } from "./auth-jwt";
import { RegistryRoutes } from "./discovery";
import { handleRequest } from "./handler";
import { GatewayError, statusJson } from "./http-errors";
import { gatewayMetrics } from "./observe";
import type { GatewayPolicy } from "./policy";
import { PolicyStore } from "./policy-store";
import { validatePolicy } from "./policy-validate";
import { RateLimiter } from "./rate-limit";
import { ClusterLimiter } from "./rate-limit-redis";
import { filesFromDescriptors, RouteTable, type BoundRoute, type RouteSource } from "./route-table";
import { checkTls } from "./tls";
import { TrafficRouter } from "./traffic";
import { Upstreams } from "./upstreams";

/** Upstream services known at start: generated definitions or descriptor files, and where they run. */
export interface StaticUpstream {
  /** `etcd:///<name>`, `host:port`, or any grpc-js target. */
  readonly target: string;
  /** Generated `…Definition`s (they embed their descriptors). */
  readonly definitions?: readonly { readonly descriptors: readonly string[] }[];
  /** Descriptor files (`FileDescriptorProto`s), such as from `buf build`. */
  readonly files?: RouteSource["files"];
}

export interface GatewayOptions {
  /** Services given at start (files or generated definitions). */
  readonly upstreams?: readonly StaticUpstream[];
  /** etcd: registry discovery, policies, API keys. Without it the gateway runs on `policy` alone. */
  readonly etcd?: EtcdOptions;
  /** Discover routes from every service in the registry (or only the named ones) through reflection (needs `etcd`). */
  readonly discover?: boolean | { readonly services: readonly string[] };
  /** Gateways sharing a name share policy and keys (default "default"). */
  readonly name?: string;
  /** Config-center environment of the policy (default `PROTOMESH_ENV`, else "default"). */
  readonly env?: string;
  /** Policy used when etcd holds none (or without etcd). */
  readonly policy?: GatewayPolicy;
  /** Route `POST /package.Service/Method` for methods without annotations (default false). */
  readonly unannotated?: boolean;
  /** Redis for cluster-wide rate limits (`redis://127.0.0.1:6379`). */
  readonly redis?: string;
  /** Longest wait for Redis per request (ms, default 100). */
  readonly redisTimeoutMs?: number;
  /** Honour `X-HTTP-Method-Override` on POST (default false: it lets a client walk past method-based filters). */
  readonly methodOverride?: boolean;
  /** Prefix of headers carrying response metadata (default `grpc-metadata-`). */
  readonly responseHeaderPrefix?: string;
  /** Time allowed for the request headers (ms, default 10000) and the whole request (ms, default 60000): slow clients are cut off. */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Largest request header block in bytes (default 16 KiB). */
  readonly maxHeaderBytes?: number;
  /** TLS key and certificate (PEM): serve HTTPS. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** The gateway's zone, for traffic rules that prefer the caller's zone. */
  readonly zone?: string;
  /**
   * How each upstream channel spreads calls over the instances: a protomesh balancer, as a
   * client's `balancer` option (default grpc-js `round_robin`). Applies to `etcd:///` channels and
   * to the instance sets traffic rules pick alike.
   */
  readonly balancer?: BalancerOption;
  /**
   * Circuit breaking: grpc-js outlier detection around the balancer ejects an instance that fails
   * at least `threshold` % of at least `requestVolume` calls in an `intervalMs` (`true`: the
   * defaults of a client's `outlierDetection`). Every non-OK status counts, application errors
   * included. Off by default, as for clients; set per gateway, since channels are shared by routes.
   */
  readonly outlierDetection?: OutlierDetectionOption | boolean;
  /**
   * One JSON line per request, with its `requestId`: `true` (default) writes it through `logger`
   * at `info`; a `Logger` writes it there instead (`protomesh gateway` prints it on stdout
   * whatever the log level); `false` writes none.
   */
  readonly accessLog?: boolean | Logger;
  readonly logger?: Logger;
}

/** A running gateway. */
export interface Gateway {
  readonly server: http.Server;
  /** Starts serving; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<number>;
  /** The routes in force (method, template, target). */
  routes(): readonly BoundRoute[];
  /** The policy in force and its version in etcd (0 when given in code). */
  readonly policy: { readonly value: GatewayPolicy; readonly version: number };
  /** Replaces the policy in this process only (validated). */
  setPolicy(policy: GatewayPolicy): void;
  close(): Promise<void>;
}

/**
 * Creates a gateway: routes from the services' `google.api.http`
 * annotations, policies from etcd (hot-reloaded), upstream calls through
 * protomesh channels.
 *
 * @example
 *   const gw = await createGateway({ upstreams: [{ target: "etcd:///greeter", definitions: [HttpGreeterDefinition] }], etcd: {} });
 *   await gw.listen(8080);
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? getLogger().child({ component: "gateway" });
  const name = options.name ?? "default";
  // Before any connection is made: a bad key or certificate is a start-up error, not a failed handshake later.
  if (options.tls) checkTls(options.tls);
  const table = new RouteTable(options.unannotated === true);
  const resolved = options.etcd ? resolveEtcdOptions({ ...options.etcd, logger }) : undefined;
  const registry: EtcdRegistry | undefined = options.etcd ? etcdRegistry({ ...options.etcd, logger }) : undefined;
  let upstreams: Upstreams;
  try {
    upstreams = new Upstreams(registry, { balancer: options.balancer, outlierDetection: options.outlierDetection });
  } catch (err) {
    // Bad balancing options: a start-up error, before any connection is made.
    await registry?.close();
    throw err;
  }
  for (const [i, up] of (options.upstreams ?? []).entries()) {
    const files = [...(up.files ?? []), ...filesFromDescriptors((up.definitions ?? []).flatMap((d) => d.descriptors))];
    table.put({ id: `static:${i}:${up.target}`, target: up.target, files });
  }

  let policy = { value: validatePolicy(options.policy ?? {}), version: 0 };
  let jwt: { settings: unknown; verifier: JwtVerifier | undefined } = { settings: undefined, verifier: undefined };
  const verifier = () => {
    const settings = policy.value.jwt;
    if (settings !== jwt.settings) jwt = { settings, verifier: settings ? new JwtVerifier(settings, logger) : undefined };
    return jwt.verifier;
  };
  const stops: (() => Promise<void> | void)[] = [];
  let etcd: Etcd3 | undefined;
  let keys: ApiKeyCache | undefined;
  try {
    if (resolved) {
      etcd = createEtcdClient(resolved);
      const client = etcd;
      stops.push(() => client.close());
      keys = new ApiKeyCache(etcd, keysPrefix(resolved.namespace, name), resolved.callTimeoutMs, logger);
      await keys.start();
      const k = keys;
      stops.push(() => k.stop());
      const store = new PolicyStore({ ...options.etcd, logger, gateway: name, env: options.env });
      stops.push(() => store.close());
      const following = await store.follow((value, version) => {
        policy = { value, version };
        logger.info("gateway policy applied", { version });
      }, logger);
      stops.push(() => following.stop());
      if (options.discover) {
        const discovery = new RegistryRoutes({
          client: etcd,
          namespace: resolved.namespace,
          callTimeoutMs: resolved.callTimeoutMs,
          table,
          upstreams,
          logger,
          only: typeof options.discover === "object" ? options.discover.services : undefined,
        });
        await discovery.start();
        stops.push(() => discovery.stop());
      }
    } else if (options.discover) {
      throw new Error("createGateway: discover needs etcd");
    }
  } catch (err) {
    for (const stop of stops.reverse()) await stop();
    upstreams.close();
    await registry?.close();
    throw err;
  }
  const cluster = options.redis ? new ClusterLimiter({ redis: options.redis, timeoutMs: options.redisTimeoutMs, logger }) : undefined;
  let warnedNoRedis = false;
  const limiter = new RateLimiter(cluster, () => {
    if (warnedNoRedis) return;
    warnedNoRedis = true;
    logger.warn("a route has a cluster rate limit but the gateway has no Redis (--redis): it is enforced per gateway, at the cluster rate");
  });
  const cache = keys;
  const traffic = new TrafficRouter(registry, upstreams, logger, options.zone);
  const deps = {
    table,
    policy: () => policy.value,
    traffic,
    auth: { policy: () => policy.value, jwt: verifier, lookupKey: (id: string) => cache?.lookup(id) },
    limiter,
    metrics: gatewayMetrics(),
    logger,
    accessLog: options.accessLog === false ? undefined : options.accessLog === true || options.accessLog === undefined ? logger : options.accessLog,
    responseHeaderPrefix: options.responseHeaderPrefix ?? "grpc-metadata-",
    methodOverride: options.methodOverride === true,
    secure: options.tls !== undefined,
  };
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
    // Node checks the header and request timeouts on this interval (30 s by default): too coarse for slow-loris defence.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => void handleRequest(deps, req, res);
  const server: http.Server = options.tls ? https.createServer({ ...serverOptions, key: options.tls.key, cert: options.tls.cert }, listener) : http.createServer(serverOptions, listener);
  server.headersTimeout = headersTimeout;
  server.requestTimeout = options.requestTimeoutMs ?? 60_000;
  server.keepAliveTimeout = 5_000;
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  return {
    server,
    get policy() {
      return policy;
    },
    setPolicy(value) {
      policy = { value: validatePolicy(value), version: policy.version };
    },
    routes: () => table.router.routes,
    listen(port = 0, host = "127.0.0.1") {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight requests get a moment, then their sockets go.
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 2000).unref();
      });
      for (const stop of stops.reverse()) await stop();
      await cluster?.close();
      traffic.close();
      upstreams.close();
      await registry?.close();
    },
  };
}

/** Errors the HTTP parser raises before a request exists (oversized headers, timeouts, garbage), in the JSON shape. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  let status = 400;
  let message = "malformed HTTP request";
  let code = Status.INVALID_ARGUMENT;
  if (err.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    message = "request headers too large";
    code = Status.RESOURCE_EXHAUSTED;
  } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    status = 408;
    message = "request not received in time";
    code = Status.DEADLINE_EXCEEDED;
  }
  const body = JSON.stringify(statusJson(new GatewayError(code, message, status)));
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
