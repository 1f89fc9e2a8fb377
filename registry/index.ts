/**
 * Service registry: backend-neutral interfaces, and the etcd backend.
 *
 * ```ts
 * const registry = etcdRegistry({ endpoints: ["127.0.0.1:2379"] });
 * const handle = await registry.register({ service: "greeter", address: "127.0.0.1:50051" });
 * ```
 */
export { DISCOVERY_OPTION } from "./registry";
export type { Registrar, Discovery, DiscoveryUpdate, Registration, RegistrationHandle, InstanceInfo } from "./registry";
export {
  etcdRegistry,
  RegistrationTimeoutError,
  registerEtcdResolver,
  setDefaultDiscovery,
  startEmbeddedEtcd,
  ETCD_SCHEME,
} from "./etcd";
export type {
  EtcdRegistry,
  EtcdRegistryOptions,
  EtcdRegistrationHandle,
  EtcdOptions,
  EmbeddedEtcd,
  EmbeddedEtcdMember,
  EmbeddedEtcdOptions,
  KeeperState,
} from "./etcd";
