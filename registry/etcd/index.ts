/**
 * The etcd backend of the registry.
 *
 * End-user API: `etcdRegistry` (register and discover), the `etcd:///` resolver
 * (`registerEtcdResolver`, or `import "protomesh/registry/etcd/register"`), and
 * `startEmbeddedEtcd` for tests and demos. The rest is the extension API for code
 * that reads or writes registry entries itself.
 */
export { etcdRegistry, RegistrationTimeoutError } from "./registry";
export type { EtcdRegistry, EtcdRegistryOptions, EtcdRegistrationHandle } from "./registry";
export type { EtcdOptions, PemSource } from "./options";
export { registerEtcdResolver, setDefaultDiscovery, ETCD_SCHEME } from "./resolver";
export { startEmbeddedEtcd } from "./embedded";
export type { EmbeddedEtcd, EmbeddedEtcdMember, EmbeddedEtcdOptions } from "./embedded";
export type { KeeperState, StateListener } from "./lease-keeper";

// Extension API
export { resolveEtcdOptions, createEtcdClient, DEFAULT_CALL_TIMEOUT_MS } from "./options";
export type { ResolvedEtcdOptions } from "./options";
export { servicePrefix, instanceKey, encodeInstance, decodeInstance, MAX_VALUE_BYTES } from "./keys";
export type { DecodeResult } from "./keys";
export { LeaseKeeper, DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS } from "./lease-keeper";
export type { LeaseKeeperOptions } from "./lease-keeper";
export { EtcdDiscovery } from "./discovery";
export type { EtcdDiscoveryContext } from "./discovery";
