/**
 * Reads every key under a prefix as of one revision, a page at a time, so a
 * large or polluted prefix never exceeds a gRPC message limit in one response.
 */
import type { Etcd3, IKeyValue } from "etcd3";
import { prefixEnd } from "./watch-stream";

/** Keys per range request. */
export const PAGE_SIZE = 500;

/** All key-values under `prefix` at a single revision, returned with that revision. */
export async function readPrefix(client: Etcd3, prefix: string, pageSize = PAGE_SIZE): Promise<{ kvs: IKeyValue[]; revision: bigint }> {
  const end = prefixEnd(prefix);
  const kvs: IKeyValue[] = [];
  let from = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    // Later pages pin the first page's revision: the result is one consistent snapshot.
    const res = await client.kv.range({ key: from, range_end: end, limit: pageSize, revision });
    revision ??= res.header.revision;
    kvs.push(...res.kvs);
    const last = res.kvs.at(-1);
    if (!res.more || last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { kvs, revision: BigInt(revision) };
}
