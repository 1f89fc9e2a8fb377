/**
 * Where a service's traffic rule lives in etcd: one key per service, holding the rule in force
 * with its version and audit fields; every version also stays under `versions/` for history and
 * rollback.
 *
 * ```
 * /protomesh/<namespace>/traffic/<service>                       {"version":7,"value":{…rule…},"author":…,"at":…,"comment":…,"kind":"set","base":6}
 * /protomesh/<namespace>/traffic/<service>/versions/0000000007   the same record, immutable
 * ```
 *
 * Clients watch the first key only. The record is the config center's version record (same
 * fields), so history, diff and rollback read the same way for config and traffic.
 */
import { compileTrafficRule, type CompiledRule } from "../../runtime/balancing/rule-compile";
import { checkSegment } from "./keys";

/** Digits of a version number in its key, so keys sort in version order (as the config center's). */
export const TRAFFIC_VERSION_DIGITS = 10;
/** Largest stored rule record, in bytes. */
export const MAX_TRAFFIC_RECORD_BYTES = 64 * 1024;

export interface TrafficKeys {
  /** The key clients watch: the rule in force. */
  readonly current: string;
  /** Prefix of the numbered versions, with a trailing slash. */
  readonly versions: string;
  version(n: number): string;
}

export function trafficKeys(namespace: string, service: string): TrafficKeys {
  const current = `/protomesh/${namespace}/traffic/${checkSegment(service, "service")}`;
  const versions = `${current}/versions/`;
  return { current, versions, version: (n) => `${versions}${String(n).padStart(TRAFFIC_VERSION_DIGITS, "0")}` };
}

/** A stored rule, decoded and compiled; or why it could not be. */
export type DecodedTrafficRule = { ok: true; version: number; rule: CompiledRule } | { ok: false; reason: string };

/**
 * Decodes the value of a service's rule key. Defensive, as everything read from etcd: anyone with
 * write access can put anything there, so it reports a reason instead of throwing.
 */
export function decodeTrafficRecord(bytes: Buffer): DecodedTrafficRule {
  if (bytes.length > MAX_TRAFFIC_RECORD_BYTES) return { ok: false, reason: `value is ${bytes.length} bytes, over the ${MAX_TRAFFIC_RECORD_BYTES}-byte limit` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return { ok: false, reason: "value is not JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { ok: false, reason: "value is not a JSON object" };
  const record = parsed as Record<string, unknown>;
  if (typeof record.version !== "number" || !Number.isInteger(record.version) || record.version < 1) return { ok: false, reason: `"version" is not a version number` };
  try {
    return { ok: true, version: record.version, rule: compileTrafficRule(record.value) };
  } catch (err) {
    return { ok: false, reason: `"value" is not a valid rule: ${(err as Error).message}` };
  }
}
