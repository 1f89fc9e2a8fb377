/**
 * Importing this module registers the `etcd:///<service>` scheme and the
 * `consistent_hash` load-balancing policy with grpc-js, so any grpc-js client can
 * dial registry names and balance by key from its own service config:
 *
 * ```ts
 * import "protomesh/registry/etcd/register";
 * const client = new grpc.Client("etcd:///greeter", grpc.credentials.createInsecure(), {
 *   "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ consistent_hash: { header: "x-user" } }] }),
 * });
 * ```
 */
import { setup as registerConsistentHash } from "../../runtime/balancing/lb-consistent-hash";
import { registerEtcdResolver } from "./resolver";

registerEtcdResolver();
registerConsistentHash();
