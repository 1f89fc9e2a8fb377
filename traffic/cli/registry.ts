/** The etcd registry the CLI's `watch` follows rules through (the same watcher clients use). */
import { etcdRegistry, type EtcdRegistry } from "../../registry/etcd/registry";
import type { Logger } from "../../runtime/logger";

export function openEtcdRegistry(endpoints: string[], namespace: string | undefined, logger: Logger): EtcdRegistry {
  return etcdRegistry({ namespace, endpoints, logger });
}
