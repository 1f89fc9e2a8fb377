/**
 * The instances the registry holds for a service, read once (no watch): what `protomesh health
 * etcd:///svc` checks and what a release scrapes when there is no Prometheus.
 */
import type { Etcd3 } from "etcd3";
import type { InstanceInfo } from "../runtime/balancing/instances";
import { decodeInstance, servicePrefix } from "../registry/etcd/keys";
import { readPrefix } from "../registry/etcd/read-prefix";

/** Every decodable instance of `service`, by id; entries that do not parse are returned as `skipped`. */
export async function listInstances(client: Etcd3, namespace: string, service: string): Promise<{ instances: InstanceInfo[]; skipped: string[] }> {
  const prefix = servicePrefix(namespace, service);
  const { kvs } = await readPrefix(client, prefix);
  const instances: InstanceInfo[] = [];
  const skipped: string[] = [];
  for (const kv of kvs) {
    const decoded = decodeInstance({ prefix, service }, kv.key, kv.value);
    if (decoded.ok) instances.push(decoded.instance);
    else skipped.push(`${kv.key.toString()}: ${decoded.reason}`);
  }
  instances.sort((a, b) => a.id.localeCompare(b.id));
  return { instances, skipped };
}

/** Whether `instance` carries every label (`version`, `zone`, `id`, else metadata), as traffic-rule subsets select. */
export function hasLabels(instance: InstanceInfo, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, want] of Object.entries(labels)) {
    const have = key === "version" ? instance.version : key === "zone" ? instance.zone : key === "id" ? instance.id : instance.metadata[key];
    if (have !== want) return false;
  }
  return true;
}
