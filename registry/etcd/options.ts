/**
 * Connection options for etcd and the one place an etcd3 client is created, so
 * every client in protomesh gets the same deadlines, retry policy and channel
 * settings.
 */
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { Etcd3, IOptions } from "etcd3";
import { getLogger, type Logger } from "../../runtime/logger";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { withoutIpServerName } from "../../runtime/ip-safe-credentials";

/** PEM contents, or a path to a PEM file. */
export type PemSource = Buffer | string;

/** How to reach an etcd cluster. Every field is optional; see each for its default. */
export interface EtcdOptions {
  /** `host:port` or `http(s)://host:port`. Default: `ETCD_ENDPOINTS` (comma-separated). */
  endpoints?: string[];
  /** Isolates deployments sharing one cluster. Default: `PROTOMESH_NAMESPACE`, else `"default"`. */
  namespace?: string;
  /** TLS towards etcd. Endpoints without a scheme become `https://` when set. */
  tls?: { ca?: PemSource; cert?: PemSource; key?: PemSource };
  /** etcd user/password authentication. */
  auth?: { username: string; password: string };
  /** Deadline for every unary etcd call, in milliseconds. Default 2000. */
  callTimeoutMs?: number;
  /** Default: the framework logger, bound to `component: "registry.etcd"`. */
  logger?: Logger;
}

/** {@link EtcdOptions} with defaults applied and values checked. */
export interface ResolvedEtcdOptions {
  readonly endpoints: readonly string[];
  readonly namespace: string;
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  readonly auth?: { username: string; password: string };
  readonly callTimeoutMs: number;
  readonly logger: Logger;
}

export const DEFAULT_CALL_TIMEOUT_MS = 2000;
const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Applies defaults and validates; throws an `Error` that says what to fix. */
export function resolveEtcdOptions(options: EtcdOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedEtcdOptions {
  const tls = options.tls && {
    ca: readPem(options.tls.ca, "tls.ca"),
    cert: readPem(options.tls.cert, "tls.cert"),
    key: readPem(options.tls.key, "tls.key"),
  };
  if (tls && Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new Error("etcd tls: cert and key must be given together");
  }
  const raw = options.endpoints ?? (env.ETCD_ENDPOINTS ?? "").split(",");
  const endpoints = raw.map((e) => e.trim()).filter((e) => e.length > 0).map((e) => withScheme(e, tls !== undefined));
  if (endpoints.length === 0) {
    throw new Error("no etcd endpoints: pass `endpoints` or set ETCD_ENDPOINTS (e.g. ETCD_ENDPOINTS=127.0.0.1:2379)");
  }
  const namespace = resolveNamespace(options.namespace, env);
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!Number.isFinite(callTimeoutMs) || callTimeoutMs <= 0) {
    throw new Error(`invalid callTimeoutMs ${callTimeoutMs}: must be a positive number of milliseconds`);
  }
  if (options.auth && (!options.auth.username || typeof options.auth.password !== "string")) {
    throw new Error("etcd auth needs a username and a password");
  }
  const logger = options.logger ?? getLogger().child({ component: "registry.etcd" });
  return { endpoints, namespace, tls, auth: options.auth, callTimeoutMs, logger };
}

/** The namespace to use (`PROTOMESH_NAMESPACE`, else `"default"`, when not given); throws on an invalid one. */
export function resolveNamespace(namespace: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const ns = namespace ?? env.PROTOMESH_NAMESPACE ?? "default";
  if (!NAMESPACE_PATTERN.test(ns)) {
    throw new Error(`invalid registry namespace ${JSON.stringify(ns)}: use 1-63 characters from [A-Za-z0-9._-], starting with a letter or digit`);
  }
  return ns;
}

/**
 * Creates an etcd3 client. Unary calls get a fresh `callTimeoutMs` deadline per
 * attempt; a failed attempt moves to the next endpoint at most once per other
 * endpoint. etcd3's per-host circuit breaker is off: it would refuse calls for
 * 5 s after three failures, which delays re-registration after an etcd restart
 * by that much; our own loops back off instead.
 */
export function createEtcdClient(options: ResolvedEtcdOptions): Etcd3 {
  // Loaded here, not at import: etcd3 brings protobufjs and proto-loader, about half of what
  // `import "protomesh"` would otherwise cost, and a process that never talks to etcd never pays it.
  const { Etcd3: Client, isRecoverableError } = require("etcd3") as typeof import("etcd3");
  const { handleWhen, noop, retry } = require("cockatiel") as typeof import("cockatiel");
  const deadline = (ctx: { isStream: boolean }) => (ctx.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs });
  const config: IOptions = {
    hosts: [...options.endpoints],
    defaultCallOptions: deadline,
    faultHandling: {
      host: () => noop,
      global:
        options.endpoints.length > 1
          ? retry(handleWhen(isRecoverableError), { maxAttempts: options.endpoints.length - 1 })
          : noop,
    },
    grpcOptions: {
      // Reconnect quickly after an etcd restart (grpc-js backs off up to 120 s by default).
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
      // Notice a silently dead connection under a long-lived watch. etcd refuses pings more often than every 5 s.
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      // A list page or watch batch can carry values up to etcd's 1.5 MiB request limit.
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    },
  };
  if (options.tls) {
    config.credentials = {
      rootCertificate: options.tls.ca ?? Buffer.from(rootCertificates.join("\n")),
      certChain: options.tls.cert,
      privateKey: options.tls.key,
    };
  }
  if (options.auth) {
    config.auth = { ...options.auth, callOptions: () => ({ deadline: Date.now() + options.callTimeoutMs }) };
  }
  const client = new Client(config);
  if (options.tls) sendNoIpServerName(client);
  return client;
}

/**
 * etcd3 builds its TLS credentials itself, from `config.credentials`, when the client is made,
 * and grpc-js would send an IP endpoint as the TLS server name (Node's DEP0123 warning). Swap
 * them for ones that do not, before any connection exists. etcd3 1.1 keeps them on its pool's
 * hosts and authenticator; another layout leaves them as they are (only the warning returns).
 */
function sendNoIpServerName(client: Etcd3): void {
  type Holder = { channelCredentials?: ChannelCredentials; credentials?: ChannelCredentials };
  const pool = (client as unknown as { pool?: { hosts?: Holder[]; authenticator?: Holder } }).pool;
  for (const host of pool?.hosts ?? []) if (host.channelCredentials) host.channelCredentials = withoutIpServerName(host.channelCredentials);
  if (pool?.authenticator?.credentials) pool.authenticator.credentials = withoutIpServerName(pool.authenticator.credentials);
}

/** Call options carrying a fresh deadline, for calls the default factory does not cover (streams). */
export function deadlineIn(ms: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}

function withScheme(endpoint: string, tls: boolean): string {
  return /^https?:\/\//.test(endpoint) ? endpoint : `${tls ? "https" : "http"}://${endpoint}`;
}

function readPem(source: PemSource | undefined, what: string): Buffer | undefined {
  if (source === undefined || Buffer.isBuffer(source)) return source;
  try {
    return readFileSync(source);
  } catch (err) {
    throw new Error(`etcd ${what}: cannot read ${source}: ${(err as Error).message}`);
  }
}
