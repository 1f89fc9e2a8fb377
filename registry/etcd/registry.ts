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
import type { InstanceInfo } from "../../runtime/balancing/instances";
import type { Discovery, DiscoveryUpdate, TrafficRuleUpdate, Registrar, Registration, RegistrationHandle } from "../registry";
import { sleep } from "./backoff";
import { EtcdDiscovery } from "./discovery";
import { checkSegment, encodeInstance, instanceKey, isHostPort } from "./keys";
import { checkTtl, DEFAULT_TTL_SECONDS, LeaseKeeper, type KeeperState, type StateListener } from "./lease-keeper";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "./options";

export interface EtcdRegistryOptions extends EtcdOptions {
  /** Lease TTL in whole seconds, at least 2. Default 10. An instance that dies vanishes within this. */
  ttlSeconds?: number;
  /**
   * How long `register()` waits for the first successful put before it returns
   * anyway; the registration keeps being retried in the background. Default 5000.
   */
  registerWaitMs?: number;
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
  /** Follows a service's traffic rule (one shared etcd watch per service). */
  watchTrafficRule(service: string, onUpdate: (update: TrafficRuleUpdate) => void): { stop(): void };
  /** Deregisters what is still registered, stops watches, closes the etcd client. */
  close(): Promise<void>;
}

const DEFAULT_REGISTER_WAIT_MS = 5000;

/** Creates a registry over etcd. Throws at once on bad options (no endpoints, bad namespace, TTL < 2). */
export function etcdRegistry(options: EtcdRegistryOptions = {}): EtcdRegistry {
  const resolved = resolveEtcdOptions(options);
  const { namespace, callTimeoutMs, logger } = resolved;
  const ttlSeconds = checkTtl(options.ttlSeconds ?? DEFAULT_TTL_SECONDS);
  const registerWaitMs = options.registerWaitMs ?? DEFAULT_REGISTER_WAIT_MS;
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
    if (!inTime && keeper.state !== "stopped") {
      logger.warn("not registered yet; still trying in the background", { key, waitedMs: registerWaitMs });
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
    watchTrafficRule: (service: string, onUpdate: (update: TrafficRuleUpdate) => void) => discovery.watchTrafficRule(service, onUpdate),
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
