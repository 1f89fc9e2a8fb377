/**
 * Importing this module registers the `etcd:///<service>` scheme and protomesh's
 * load-balancing policies (`protomesh_round_robin`, `p2c`, `consistent_hash`, each obeying the
 * service's traffic rule) with grpc-js, so any grpc-js client can dial registry names and
 * balance from its own service config:
 *
 * ```ts
 * import "protomesh/registry/etcd/register";
 * const client = new grpc.Client("etcd:///greeter", grpc.credentials.createInsecure(), {
 *   "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ consistent_hash: { header: "x-user" } }] }),
 * });
 * ```
 */
import { setupBalancers } from "../../runtime/balancing/setup";
import { registerEtcdResolver } from "./resolver";

registerEtcdResolver();
setupBalancers();
