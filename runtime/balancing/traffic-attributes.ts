/**
 * How a service's traffic rule and the caller's zone reach an LB policy. Like the instance
 * table, the rule travels as a resolver attribute (merged by grpc-js into the options given to
 * `updateAddressList`); keys start with grpc-js's `grpc.internal.no_subchannel` prefix so they
 * never become part of a subchannel's identity.
 */
import type { CompiledRule } from "./rule-compile";

/** Resolver attribute carrying the service's {@link TrafficState}. */
export const TRAFFIC_ATTRIBUTE = "grpc.internal.no_subchannel.protomesh.traffic";

/** Channel option naming the caller's zone, for a rule's zone preference (default: `PROTOMESH_ZONE`). */
export const ZONE_OPTION = "grpc.internal.no_subchannel.protomesh.zone";

/** `pickInformation` key under which our config selector passes the call's method to pickers. */
export const METHOD_PICK_INFO = "protomesh.method";

/** The rule in force for a service, as the resolver hands it over. */
export interface TrafficState {
  /** Undefined: no rule, every instance serves every call. */
  readonly rule: CompiledRule | undefined;
  /** The stored rule's version (0 without one), for logs and tests. */
  readonly version: number;
}

/** The traffic state a resolver attached to channel options, if any. */
export function trafficFromOptions(options: { readonly [key: string]: unknown }): TrafficState | undefined {
  const value = options[TRAFFIC_ATTRIBUTE];
  return typeof value === "object" && value !== null && "version" in value ? (value as TrafficState) : undefined;
}

/** The caller's zone: the channel option, else `PROTOMESH_ZONE`, else undefined. */
export function zoneFromOptions(options: { readonly [key: string]: unknown }): string | undefined {
  const value = options[ZONE_OPTION];
  if (typeof value === "string" && value !== "") return value;
  const env = process.env.PROTOMESH_ZONE;
  return env ? env : undefined;
}
