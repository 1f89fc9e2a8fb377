/**
 * Importing this module registers the `etcd:///<service>` scheme with grpc-js,
 * so any grpc-js client can dial registry names:
 *
 * ```ts
 * import "protomesh/registry/etcd/register";
 * const client = new grpc.Client("etcd:///greeter", grpc.credentials.createInsecure());
 * ```
 */
import { registerEtcdResolver } from "./resolver";

registerEtcdResolver();
