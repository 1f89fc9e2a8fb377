/**
 * The registry's key layout and value format:
 * `/protomesh/<namespace>/services/<service>/<instance-id>` →
 * `{"id","service","address","version","zone","weight","metadata","startedAt"}`.
 * Reading is defensive: anyone with write access to etcd can put anything under
 * the prefix, so decoding reports a reason instead of throwing.
 */
import type { InstanceInfo } from "../../runtime/balancing/instances";

/** Largest encoded instance value accepted, in bytes. */
export const MAX_VALUE_BYTES = 4096;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throws unless `name` is a valid service or instance-id path segment. */
export function checkSegment(name: string, what: "service" | "instance id"): string {
  if (!NAME_PATTERN.test(name)) {
    throw new Error(`invalid ${what} ${JSON.stringify(name)}: use 1-128 characters from [A-Za-z0-9._-], starting with a letter or digit`);
  }
  return name;
}

/** The prefix holding every instance of `service`, with a trailing slash. */
export function servicePrefix(namespace: string, service: string): string {
  return `/protomesh/${namespace}/services/${checkSegment(service, "service")}/`;
}

/** The key of one instance. */
export function instanceKey(namespace: string, service: string, id: string): string {
  return servicePrefix(namespace, service) + checkSegment(id, "instance id");
}

/** Encodes an instance as the registry value; throws if it exceeds {@link MAX_VALUE_BYTES}. */
export function encodeInstance(info: InstanceInfo): string {
  const value = JSON.stringify({
    id: info.id,
    service: info.service,
    address: info.address,
    version: info.version,
    zone: info.zone,
    weight: info.weight,
    metadata: info.metadata,
    startedAt: info.startedAt,
  });
  const size = Buffer.byteLength(value);
  if (size > MAX_VALUE_BYTES) {
    throw new Error(`registration of ${info.service}/${info.id} is ${size} bytes encoded, over the ${MAX_VALUE_BYTES}-byte limit: trim its metadata`);
  }
  return value;
}

export type DecodeResult = { ok: true; instance: InstanceInfo } | { ok: false; reason: string };

/**
 * Decodes a value read under the prefix of `service`. `version`, `zone`, `weight` and
 * `metadata` may be absent (older or hand-written entries) but must have the
 * right type when present; the id and service must match the key.
 */
export function decodeInstance(where: { prefix: string; service: string }, key: Buffer | string, value: Buffer): DecodeResult {
  const { prefix, service } = where;
  const keyText = key.toString();
  const id = keyText.startsWith(prefix) ? keyText.slice(prefix.length) : "";
  if (!NAME_PATTERN.test(id)) return fail(`key does not end in a valid instance id`);
  if (value.length > MAX_VALUE_BYTES) return fail(`value is ${value.length} bytes, over the ${MAX_VALUE_BYTES}-byte limit`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString("utf8"));
  } catch {
    return fail("value is not JSON");
  }
  if (!isRecord(parsed)) return fail("value is not a JSON object");
  const v = parsed;
  if (v.id !== id) return fail(`"id" ${JSON.stringify(v.id)} does not match the key`);
  if (v.service !== service) return fail(`"service" ${JSON.stringify(v.service)} does not match the key`);
  if (typeof v.address !== "string" || !isHostPort(v.address)) return fail(`"address" is not host:port`);
  if (v.version !== undefined && typeof v.version !== "string") return fail(`"version" is not a string`);
  if (v.zone !== undefined && typeof v.zone !== "string") return fail(`"zone" is not a string`);
  if (v.weight !== undefined && !(typeof v.weight === "number" && Number.isFinite(v.weight) && v.weight > 0)) {
    return fail(`"weight" is not a positive number`);
  }
  if (v.metadata !== undefined && !(isRecord(v.metadata) && Object.values(v.metadata).every((m) => typeof m === "string"))) {
    return fail(`"metadata" is not an object of strings`);
  }
  if (!(typeof v.startedAt === "number" && Number.isFinite(v.startedAt) && v.startedAt >= 0)) {
    return fail(`"startedAt" is not a timestamp`);
  }
  const instance: InstanceInfo = {
    id,
    service,
    address: v.address,
    version: (v.version as string | undefined) ?? "",
    zone: (v.zone as string | undefined) ?? "",
    weight: (v.weight as number | undefined) ?? 1,
    metadata: { ...((v.metadata as Record<string, string> | undefined) ?? {}) },
    startedAt: v.startedAt,
  };
  return { ok: true, instance };
}

/** True for `host:port`, `[v6]:port`; port 1-65535. */
export function isHostPort(address: string): boolean {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]/]+)):(\d{1,5})$/.exec(address);
  if (!m) return false;
  const port = Number(m[3]);
  return port > 0 && port <= 65535;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function fail(reason: string): DecodeResult {
  return { ok: false, reason };
}
