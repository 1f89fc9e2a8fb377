/**
 * Which applications have config, in which environments: the `current` and
 * `gray` keys under `/protomesh/<namespace>/config/`, read keys-only a page
 * at a time (version keys are skipped by the key pattern, not fetched whole).
 */
import type { Etcd3 } from "etcd3";
import { prefixEnd } from "../../registry/etcd/watch-stream";

export interface ConfigApp {
  readonly env: string;
  readonly app: string;
}

export async function listConfigApps(client: Etcd3, namespace: string): Promise<ConfigApp[]> {
  const prefix = `/protomesh/${namespace}/config/`;
  const end = prefixEnd(prefix);
  const found = new Map<string, ConfigApp>();
  let from: Buffer = Buffer.from(prefix);
  for (let page = 0; page < 1000; page++) {
    const res = await client.kv.range({ key: from, range_end: end, keys_only: true, limit: 1000 });
    for (const kv of res.kvs) {
      const parts = kv.key.toString().slice(prefix.length).split("/");
      if (parts.length >= 3 && parts[0] && parts[1]) found.set(`${parts[0]}/${parts[1]}`, { env: parts[0], app: parts[1] });
    }
    const last = res.kvs.at(-1);
    if (!res.more || !last) break;
    // Skip the rest of this app's keys: jump past "<env>/<app>/".
    const parts = last.key.toString().slice(prefix.length).split("/");
    from = parts.length >= 3 ? prefixEnd(`${prefix}${parts[0]}/${parts[1]}/`) : Buffer.concat([last.key, Buffer.from([0])]);
  }
  return [...found.values()].sort((a, b) => (a.app === b.app ? a.env.localeCompare(b.env) : a.app.localeCompare(b.app)));
}
