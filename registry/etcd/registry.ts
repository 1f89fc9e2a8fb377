/**
 * The etcd registry: `Registrar` and `Discovery` over one etcd3 client.
 *
 * ```ts
 * const registry = etcdRegistry({ endpoints: ["127.0.0.1:2379"], ttlSeconds: 10 });
 * const handle = await registry.register({ service: "greeter", address: "10.0.0.5:50051" });
 * ```
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { withoutEmptyResolutionNote } from "../../runtime/errors";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import type { Discovery, DiscoveryUpdate, Registrar, Registration, RegistrationHandle } from "../registry";
import { sleep } from "./backoff";
import { EtcdDiscovery } from "./discovery";
import { checkSegment, encodeInstance, instanceKey, isHostPort } from "./keys";
import { checkTtl, DEFAULT_TTL_SECONDS, LeaseKeeper, type KeeperState, type StateListener } from "./lease-keeper";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "./options";

export interface EtcdRegistryOptions extends EtcdOptions {
  /** Lease TTL in whole seconds, at least 2. Default 10. An instance that dies vanishes within this. */
  ttlSeconds?: number;
  /**
   * How long `register()` (and so `server.listen()`) waits for the first successful put.
   * Default 10000.
   */
  registerWaitMs?: number;
  /**
   * What `register()` does when etcd has not taken the registration within `registerWaitMs`.
   * `"reject"` (default, as go-zero and Kratos fail at start): stop trying and reject with a
   * {@link RegistrationTimeoutError}, so `listen()` rejects and the server closes instead of
   * serving where nobody can find it. `"serve"`: return anyway, keep trying in the background
   * and log a warning every `unregisteredWarnMs` until registered.
   */
  onRegisterTimeout?: "reject" | "serve";
  /** With `onRegisterTimeout: "serve"`, how often to warn while unregistered. Default 30000. */
  unregisteredWarnMs?: number;
}

/** etcd did not take a registration within `registerWaitMs` (unreachable, or too slow). */
export class RegistrationTimeoutError extends Error {
  override readonly name: string = "RegistrationTimeoutError";
}

/** A registration in etcd. Besides deregistering, it can be observed. */
export interface EtcdRegistrationHandle extends RegistrationHandle {
  /** The etcd key holding the instance. */
  readonly key: string;
  readonly state: KeeperState;
  /** The lease currently holding the key (etcd's decimal id), if any. */
  readonly leaseId: string | undefined;
  /** Resolves the next time the key is in place (at once if it is). */
  whenRegistered(): Promise<void>;
  /** Hears `registered` / `lost` / `stopped`; returns an unsubscribe function. */
  onStateChange(listener: StateListener): () => void;
}

export interface EtcdRegistry extends Registrar, Discovery {
  readonly namespace: string;
  register(registration: Registration): Promise<EtcdRegistrationHandle>;
  /** Deregisters what is still registered, stops watches, closes the etcd client. */
  close(): Promise<void>;
}

const DEFAULT_REGISTER_WAIT_MS = 10_000;
/** While serving unregistered (`onRegisterTimeout: "serve"`), how often to say so again. */
const DEFAULT_UNREGISTERED_WARN_MS = 30_000;

/** Creates a registry over etcd. Throws at once on bad options (no endpoints, bad namespace, TTL < 2). */
export function etcdRegistry(options: EtcdRegistryOptions = {}): EtcdRegistry {
  const resolved = resolveEtcdOptions(options);
  const { namespace, callTimeoutMs, logger } = resolved;
  const ttlSeconds = checkTtl(options.ttlSeconds ?? DEFAULT_TTL_SECONDS);
  const registerWaitMs = options.registerWaitMs ?? DEFAULT_REGISTER_WAIT_MS;
  const onRegisterTimeout = options.onRegisterTimeout ?? "reject";
  const client = createEtcdClient(resolved);
  const discovery = new EtcdDiscovery({ client, namespace, callTimeoutMs, logger });
  const keepers = new Map<string, LeaseKeeper>();
  let closed = false;

  async function register(registration: Registration): Promise<EtcdRegistrationHandle> {
    if (closed) throw new Error("etcd registry is closed");
    const instance = toInstance(registration);
    const key = instanceKey(namespace, instance.service, instance.id);
    if (keepers.has(key)) throw new Error(`instance ${instance.service}/${instance.id} is already registered by this registry`);
    const keeper = new LeaseKeeper({
      client,
      key,
      value: encodeInstance(instance),
      ttlSeconds,
      callTimeoutMs,
      logger: logger.child({ service: instance.service, instanceId: instance.id }),
    });
    keepers.set(key, keeper);
    keeper.start();
    const registered = keeper.whenRegistered().then(() => true, () => false);
    const inTime = await Promise.race([registered, sleep(registerWaitMs).then(() => false)]);
    if (keeper.refused) {
      if (keepers.get(key) === keeper) keepers.delete(key);
      throw keeper.refused;
    }
    // (Registered in the instant the wait ran out counts as in time.)
    if (!inTime && keeper.state !== "stopped" && keeper.state !== "registered") {
      const why = keeper.lastFailure ? `: ${withoutEmptyResolutionNote(firstLine(keeper.lastFailure))}` : "";
      const what = `could not register ${instance.service} instance ${instance.id} in etcd (${resolved.endpoints.join(", ")}) within ${registerWaitMs} ms${why}`;
      if (onRegisterTimeout === "reject") {
        if (keepers.get(key) === keeper) keepers.delete(key);
        await keeper.stop();
        throw new RegistrationTimeoutError(
          `${what}. Check that etcd is running and ETCD_ENDPOINTS points at it, or pass onRegisterTimeout: "serve" to serve unregistered and keep trying`,
        );
      }
      warnUntilRegistered(keeper, `not registered: ${what}; still trying, and clients cannot find this instance until it is`, key, options.unregisteredWarnMs ?? DEFAULT_UNREGISTERED_WARN_MS);
    }
    let deregistering: Promise<void> | undefined;
    return {
      instance,
      key,
      get state() {
        return keeper.state;
      },
      get leaseId() {
        return keeper.leaseId;
      },
      whenRegistered: () => keeper.whenRegistered(),
      onStateChange: (listener) => keeper.onStateChange(listener),
      deregister: () =>
        (deregistering ??= keeper.stop().finally(() => {
          if (keepers.get(key) === keeper) keepers.delete(key);
        })),
    };
  }

  return {
    namespace,
    register,
    list: (service) => discovery.list(service),
    watch: (service: string, onUpdate: (update: DiscoveryUpdate) => void, onError?: (error: Error) => void) =>
      discovery.watch(service, onUpdate, onError),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...keepers.values()].map((k) => k.stop()));
      keepers.clear();
      await discovery.close();
      client.close();
    },
  };
}

/** Warns now and every `intervalMs` until the keeper registers or stops. */
function warnUntilRegistered(keeper: LeaseKeeper, message: string, key: string, intervalMs: number): void {
  const logger = keeper.logger;
  const since = Date.now();
  logger.warn(message, { key });
  const timer = setInterval(() => logger.warn("still not registered in etcd; clients cannot find this instance", { key, unregisteredForMs: Date.now() - since }), intervalMs);
  timer.unref();
  const off = keeper.onStateChange((state) => {
    if (state === "lost") return;
    clearInterval(timer);
    off();
  });
}

function firstLine(err: Error): string {
  return err.message.split("\n")[0];
}

/** Validates a registration and fills in defaults. */
function toInstance(r: Registration): InstanceInfo {
  checkSegment(r.service, "service");
  const id = checkSegment(r.id ?? defaultInstanceId(), "instance id");
  if (!isHostPort(r.address)) throw new Error(`invalid address ${JSON.stringify(r.address)}: expected host:port`);
  const weight = r.weight ?? 1;
  if (!(Number.isFinite(weight) && weight > 0)) throw new Error(`invalid weight ${weight}: must be a positive number`);
  const metadata = r.metadata ?? {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new Error(`metadata ${JSON.stringify(k)} must be a string`);
  }
  return {
    id,
    service: r.service,
    address: r.address,
    version: r.version ?? "",
    zone: r.zone ?? "",
    weight,
    metadata: { ...metadata },
    startedAt: Date.now(),
  };
}

/** `<host>-<pid>-<random>`: unique, and says where the instance runs. */
function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 60) || "host";
  return `${host}-${process.pid}-${randomBytes(3).toString("hex")}`;
}
