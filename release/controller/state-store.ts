/**
 * Release state in etcd:
 *
 * ```
 * /protomesh/<ns>/release/<service>                  the release in progress or last finished (JSON state)
 * /protomesh/<ns>/release/<service>/owner            id of the controller driving it (under that controller's lease)
 * /protomesh/<ns>/release/<service>/history/<id>     every finished release, as it ended
 * ```
 *
 * Every write is conditional on the mod revision read, so a CLI command and a controller never
 * overwrite each other; the controller's writes also require that it still owns the release.
 */
import type { Etcd3 } from "etcd3";
import { checkSegment } from "../../registry/etcd/keys";
import { readPrefix } from "../../registry/etcd/read-prefix";
import { isDone, type ReleaseState } from "../state";

export interface StoredRelease {
  readonly state: ReleaseState;
  readonly modRevision: string;
}

export class StateConflictError extends Error {
  override readonly name = "StateConflictError";
}

/** Largest state accepted (etcd takes 1.5 MiB; measurements are bounded well below). */
const MAX_STATE_BYTES = 512 * 1024;

export function releaseKeys(namespace: string, service: string) {
  const current = `/protomesh/${namespace}/release/${checkSegment(service, "service")}`;
  return { current, owner: `${current}/owner`, history: `${current}/history/` };
}

export class ReleaseStateStore {
  constructor(readonly client: Etcd3, readonly namespace: string) {}

  async get(service: string): Promise<StoredRelease | undefined> {
    const key = releaseKeys(this.namespace, service).current;
    const kv = (await this.client.get(key).exec()).kvs[0];
    return kv ? { state: decode(key, kv.value), modRevision: kv.mod_revision } : undefined;
  }

  /** Every service's current release. Unreadable entries are reported, not thrown. */
  async list(): Promise<{ releases: StoredRelease[]; unreadable: string[] }> {
    const prefix = `/protomesh/${this.namespace}/release/`;
    const { kvs } = await readPrefix(this.client, prefix);
    const releases: StoredRelease[] = [];
    const unreadable: string[] = [];
    for (const kv of kvs) {
      const key = kv.key.toString();
      if (key.slice(prefix.length).includes("/")) continue;
      try {
        releases.push({ state: decode(key, kv.value), modRevision: kv.mod_revision });
      } catch (err) {
        unreadable.push((err as Error).message);
      }
    }
    return { releases, unreadable };
  }

  /** Finished releases of `service`, oldest first. */
  async history(service: string): Promise<ReleaseState[]> {
    const prefix = releaseKeys(this.namespace, service).history;
    const { kvs } = await readPrefix(this.client, prefix);
    return kvs.map((kv) => decode(kv.key.toString(), kv.value));
  }

  /**
   * Stores `state` if the key is still at `modRevision` ("0": absent) and, when `owner` is
   * given, the owner key still holds it. A finished state is copied into the history too.
   */
  async put(state: ReleaseState, modRevision: string, owner?: string): Promise<StoredRelease> {
    const keys = releaseKeys(this.namespace, state.spec.service);
    const value = JSON.stringify(state);
    if (Buffer.byteLength(value) > MAX_STATE_BYTES) throw new Error(`release state of ${state.spec.service} is over ${MAX_STATE_BYTES} bytes`);
    let txn = this.client.if(keys.current, "Mod", "==", modRevision);
    if (owner !== undefined) txn = txn.and(keys.owner, "Value", "==", owner);
    const ops = [this.client.put(keys.current).value(value)];
    if (isDone(state.phase)) ops.push(this.client.put(`${keys.history}${state.id}`).value(value));
    const res = await txn.then(...ops).commit();
    if (!res.succeeded) throw new StateConflictError(`the release of ${state.spec.service} changed meanwhile (or this controller lost it); read it again`);
    return { state, modRevision: res.header.revision };
  }
}

function decode(key: string, value: Buffer): ReleaseState {
  try {
    const state = JSON.parse(value.toString("utf8")) as ReleaseState;
    if (typeof state.id !== "string" || typeof state.phase !== "string" || typeof state.spec !== "object") throw new Error("missing fields");
    return state;
  } catch (err) {
    throw new Error(`${key} is not a release state: ${(err as Error).message}`);
  }
}
