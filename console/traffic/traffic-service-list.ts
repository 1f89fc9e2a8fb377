/**
 * Which services have traffic rules: the keys under `/protomesh/<ns>/traffic/`,
 * read keys-only a page at a time. `<service>` is the rule in force and
 * `<service>/versions/N` its history, so a service appears with or without a
 * rule in force (a removed rule keeps its history).
 */
import type { Etcd3 } from "etcd3";
import { deadlineIn } from "../../registry/etcd/options";
import { prefixEnd } from "../../registry/etcd/watch-stream";

export interface TrafficServiceEntry {
  readonly service: string;
  /** Whether a rule is in force (the service's own key exists). */
  readonly inForce: boolean;
}

export function trafficPrefix(namespace: string): string {
  return `/protomesh/${namespace}/traffic/`;
}

export async function listTrafficServices(client: Etcd3, namespace: string, callTimeoutMs: number): Promise<TrafficServiceEntry[]> {
  const prefix = trafficPrefix(namespace);
  const end = prefixEnd(prefix);
  const found = new Map<string, boolean>();
  let from = Buffer.from(prefix);
  for (let page = 0; page < 1000; page++) {
    const res = await client.kv.range({ key: from, range_end: end, keys_only: true, limit: 1000 }, deadlineIn(callTimeoutMs));
    for (const kv of res.kvs) {
      const rest = kv.key.toString("utf8").slice(prefix.length);
      const slash = rest.indexOf("/");
      const service = slash === -1 ? rest : rest.slice(0, slash);
      if (service) found.set(service, (found.get(service) ?? false) || slash === -1);
    }
    const last = res.kvs.at(-1);
    if (!res.more || !last) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return [...found].map(([service, inForce]) => ({ service, inForce })).sort((a, b) => a.service.localeCompare(b.service));
}
