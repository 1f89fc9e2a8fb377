/**
 * Changes an operator makes to a registered instance, written to its registry
 * entry so every client's balancer sees them: drain (the resolver drops a
 * draining instance from the endpoints; it keeps its registration) and weight
 * (scales its share in weighted policies such as consistent_hash). The put
 * keeps the instance's lease (`ignore_lease`), so the instance's own keeper
 * does not take it for a takeover, and is guarded by the entry's mod revision,
 * so a concurrent change is never overwritten unseen.
 *
 * An instance that loses its lease re-registers with the values it started
 * with; the change then has to be made again (the Services page shows it).
 */
import type { Etcd3 } from "etcd3";
import { decodeInstance, encodeInstance, instanceKey, servicePrefix } from "../../registry/etcd/keys";
import { deadlineIn } from "../../registry/etcd/options";
import { DRAINING_METADATA, type InstanceInfo } from "../../runtime/balancing/instances";
import { HttpError } from "../server/http-error";

export type InstanceChangeRequest = { draining: boolean } | { weight: number };

/** Applies one change; returns the entry before and after. */
export async function changeInstance(
  client: Etcd3,
  namespace: string,
  service: string,
  id: string,
  change: InstanceChangeRequest,
  callTimeoutMs: number,
): Promise<{ before: InstanceInfo; after: InstanceInfo }> {
  let key: string;
  try {
    key = instanceKey(namespace, service, id);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
  if ("weight" in change && !(typeof change.weight === "number" && Number.isFinite(change.weight) && change.weight > 0 && change.weight <= 1_000_000)) {
    throw new HttpError(400, "weight must be a number above 0 and at most 1000000");
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await client.kv.range({ key: Buffer.from(key) }, deadlineIn(callTimeoutMs));
    const kv = res.kvs[0];
    if (!kv) throw new HttpError(404, `${service}/${id} is not registered (any more)`);
    const decoded = decodeInstance({ prefix: servicePrefix(namespace, service), service }, kv.key, kv.value);
    if (!decoded.ok) throw new HttpError(409, `${service}/${id} has an unreadable registry entry: ${decoded.reason}`);
    const before = decoded.instance;
    const metadata = { ...before.metadata };
    if ("draining" in change) {
      if (change.draining) metadata[DRAINING_METADATA] = "true";
      else delete metadata[DRAINING_METADATA];
    }
    const after: InstanceInfo = { ...before, metadata, weight: "weight" in change ? change.weight : before.weight };
    let value: string;
    try {
      value = encodeInstance(after);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const txn = await client.kv.txn(
      {
        compare: [{ key: Buffer.from(key), target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), ignore_lease: true } }],
      },
      deadlineIn(callTimeoutMs),
    );
    if (txn.succeeded) return { before, after };
  }
  throw new HttpError(409, `${service}/${id} kept changing; try again`);
}
