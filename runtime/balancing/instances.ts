/**
 * Instance metadata travels from a resolver to a load-balancing policy as a
 * resolver attribute: grpc-js merges resolver attributes into the channel options
 * it hands to `LoadBalancer.updateAddressList`. The key starts with grpc-js's
 * `grpc.internal.no_subchannel` prefix so the table never becomes part of a
 * subchannel's identity (which would defeat subchannel sharing).
 */

/** Channel-option key under which a resolver publishes its {@link InstanceTable}. */
export const INSTANCES_ATTRIBUTE = "grpc.internal.no_subchannel.protomesh.instances";

/** What the registry knows about one instance, as seen by clients and LB policies. */
export interface InstanceInfo {
  /** Stable instance id (the last segment of its registry key). */
  readonly id: string;
  readonly service: string;
  /** `host:port` the instance serves on. */
  readonly address: string;
  readonly version: string;
  readonly zone: string;
  /** Relative weight, > 0; 1 when unset. */
  readonly weight: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly startedAt: number;
}

/** Instances keyed by `host:port` (as `subchannelAddressToString` prints it). */
export type InstanceTable = ReadonlyMap<string, InstanceInfo>;

/** Reads the instance table a resolver attached to channel options, if any. */
export function instancesFromOptions(options: { readonly [key: string]: unknown }): InstanceTable | undefined {
  const value = options[INSTANCES_ATTRIBUTE];
  return value instanceof Map ? (value as InstanceTable) : undefined;
}

/** Channel-option key carrying a `Discovery` object to registry resolvers (`etcd:///…`), overriding their default. */
export const DISCOVERY_OPTION = "grpc.internal.no_subchannel.protomesh.discovery";

/**
 * Instance metadata key that takes an instance out of balancing while it stays
 * registered ("true"): the console's drain action sets it in the registry, and
 * the `etcd:///` resolver leaves such instances out of the endpoints it reports.
 */
export const DRAINING_METADATA = "protomesh.draining";
