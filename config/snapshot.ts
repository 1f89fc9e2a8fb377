/**
 * One consistent read of an application's pointers: `current`, `gray` and the
 * highest version number, all at a single etcd revision (one Txn of ranges).
 * Writers use it to pick the next version and guard their Txn; watchers use it
 * to (re)start from a known revision.
 */
import type { Etcd3, IKeyValue, IRangeResponse } from "etcd3";
import { classifyKey, type ConfigKeys } from "./keys";
import { decodeCurrent, decodeGray, type GrayRule } from "./records";

/** A pointer as read: its value, or why it could not be read, with its mod revision (for Txn guards). */
export type PointerRead<T> = { ok: true; value: T; modRevision: string } | { ok: false; reason: string; modRevision: string };

export interface Snapshot {
  /** The etcd revision the snapshot reflects. */
  readonly revision: bigint;
  readonly current: PointerRead<number> | undefined;
  readonly gray: PointerRead<GrayRule> | undefined;
  /** The highest version number stored (0 when none). */
  readonly latest: number;
}

export async function readSnapshot(client: Etcd3, keys: ConfigKeys): Promise<Snapshot> {
  const res = await client.kv.txn({
    success: [
      { request_range: { key: Buffer.from(keys.current) } },
      { request_range: { key: Buffer.from(keys.gray) } },
      {
        request_range: {
          // Only keys starting with a digit ("9" + 1 is ":"), so garbage such as
          // versions/zzz, which sorts after every number, cannot hide the latest.
          key: Buffer.from(`${keys.versions}0`),
          range_end: Buffer.from(`${keys.versions}:`),
          sort_order: "Descend",
          sort_target: "Key",
          keys_only: true,
          limit: 20,
        },
      },
    ],
  });
  const [current, gray, versions] = res.responses.map((r) => (r.response_range as IRangeResponse).kvs);
  let latest = 0;
  for (const kv of versions) {
    const kind = classifyKey(keys, kv.key.toString());
    if (kind.kind === "version") {
      latest = kind.version;
      break;
    }
  }
  return {
    revision: BigInt(res.header.revision),
    current: current[0] ? pointer(current[0], decodeCurrent) : undefined,
    gray: gray[0] ? pointer(gray[0], decodeGray) : undefined,
    latest,
  };
}

function pointer<T>(kv: IKeyValue, decode: (b: Buffer) => { ok: true; value: T } | { ok: false; reason: string }): PointerRead<T> {
  const d = decode(kv.value);
  return d.ok ? { ok: true, value: d.value, modRevision: kv.mod_revision } : { ok: false, reason: d.reason, modRevision: kv.mod_revision };
}
