/**
 * The `etcd:///<service>` name resolver for grpc-js. It turns a Discovery's
 * instance set into endpoints for the channel's LB policy and attaches the
 * instance table (weights, zones, metadata) as the {@link INSTANCES_ATTRIBUTE}
 * resolver attribute.
 *
 * Which Discovery: the channel option {@link DISCOVERY_OPTION} when set, else
 * the one given to {@link setDefaultDiscovery}, else an etcd registry created on
 * first use from `ETCD_ENDPOINTS`.
 */
import { experimental, Metadata, status, type ChannelOptions } from "@grpc/grpc-js";
import { DRAINING_METADATA, INSTANCES_ATTRIBUTE, type InstanceInfo } from "../../runtime/balancing/instances";
import { withoutEmptyResolutionNote } from "../../runtime/errors";
import { DISCOVERY_OPTION, type Discovery } from "../registry";
import { checkSegment } from "./keys";
import { etcdRegistry } from "./registry";
import { describeFailure } from "./etcd-errors";

/** The URI scheme this resolver serves. */
export const ETCD_SCHEME = "etcd";

/** Changes that follow a handed-over one within this many ms are handed over together. */
export const COALESCE_MS = 20;

let defaultDiscovery: Discovery | undefined;
let envDiscovery: Discovery | undefined;

/** Sets the Discovery used by `etcd:///` channels that do not pass one in their options; `undefined` resets. */
export function setDefaultDiscovery(discovery: Discovery | undefined): void {
  defaultDiscovery = discovery;
}

function discoveryFor(options: ChannelOptions): Discovery {
  const fromOptions: unknown = options[DISCOVERY_OPTION];
  if (fromOptions !== undefined) {
    if (!isDiscovery(fromOptions)) throw new Error(`channel option ${DISCOVERY_OPTION} is not a Discovery (needs watch and list)`);
    return fromOptions;
  }
  if (defaultDiscovery) return defaultDiscovery;
  try {
    envDiscovery ??= etcdRegistry();
  } catch (err) {
    throw new Error(`no registry to resolve with: ${(err as Error).message}; or call setDefaultDiscovery()`);
  }
  return envDiscovery;
}

function isDiscovery(x: unknown): x is Discovery {
  return typeof x === "object" && x !== null && typeof (x as Discovery).watch === "function" && typeof (x as Discovery).list === "function";
}

/** The service a target names; throws a message that shows the expected form. */
function serviceOf(target: experimental.GrpcUri): string {
  if (target.authority) {
    throw new Error(`etcd target ${experimental.uriToString(target)} has an authority; use etcd:///<service>`);
  }
  try {
    return checkSegment(target.path, "service");
  } catch (err) {
    throw new Error(`etcd target ${experimental.uriToString(target)}: ${(err as Error).message}; use etcd:///<service>`);
  }
}

class EtcdResolver implements experimental.Resolver {
  private readonly service: string;
  private subscription: { stop(): void } | undefined;
  /** What was last handed to the listener, to report only changes. */
  private lastReport: string | undefined;
  private lastAccepted = true;
  private lastInstances: readonly InstanceInfo[] | undefined;
  private hadInstances = false;
  /** Bumped by destroy(): callbacks from an older subscription are dropped. */
  private generation = 0;
  /** When the last instance set was handed over (after the policy took it), for coalescing bursts. */
  private lastReportAt = Number.NEGATIVE_INFINITY;
  /** A set that arrived within {@link COALESCE_MS} of the last report, waiting for `flushTimer`. */
  private pending: readonly InstanceInfo[] | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    target: experimental.GrpcUri,
    private readonly listener: experimental.ResolverListener,
    private readonly options: ChannelOptions,
  ) {
    this.service = serviceOf(target);
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return serviceOf(target);
  }

  updateResolution(): void {
    if (this.subscription) {
      // The set is pushed as it changes; a re-resolution request only matters if the last push was refused.
      if (!this.lastAccepted && this.lastInstances) {
        const instances = this.lastInstances;
        const generation = this.generation;
        queueMicrotask(() => generation === this.generation && this.reportInstances(instances, true));
      }
      return;
    }
    const generation = this.generation;
    const later = (fn: () => void) => queueMicrotask(() => generation === this.generation && fn());
    try {
      this.subscription = discoveryFor(this.options).watch(
        this.service,
        (update) => later(() => this.onInstances(update.instances)),
        (error) => later(() => this.reportError(withoutEmptyResolutionNote(`etcd:///${this.service}: no instance list yet, ${describeFailure(error)}`))),
      );
    } catch (err) {
      // No discovery configured, or it is closed: the channel fails calls with this until a later attempt works.
      later(() => this.reportError(`etcd:///${this.service}: ${(err as Error).message}`));
    }
  }

  /**
   * A change is handed over at once, unless another was handed over less than
   * {@link COALESCE_MS} ago: then it waits out the rest of that window with any that follow, and
   * they go over as one. A burst (a fleet registering, a thousand instances in a few
   * transactions) costs the LB policy a few rebuilds instead of one per watch event; a lone change
   * is never delayed.
   */
  private onInstances(instances: readonly InstanceInfo[]): void {
    const sinceLast = performance.now() - this.lastReportAt;
    if (this.flushTimer === undefined && sinceLast >= COALESCE_MS) {
      this.reportInstances(instances, false);
      return;
    }
    this.pending = instances;
    if (this.flushTimer === undefined) {
      const generation = this.generation;
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        const next = this.pending;
        this.pending = undefined;
        if (generation === this.generation && next) this.reportInstances(next, false);
      }, Math.max(0, COALESCE_MS - sinceLast));
    }
  }

  destroy(): void {
    this.generation++;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending = undefined;
    this.lastReportAt = Number.NEGATIVE_INFINITY;
    this.subscription?.stop();
    this.subscription = undefined;
    this.lastReport = undefined;
    this.lastInstances = undefined;
    this.hadInstances = false;
    this.lastAccepted = true;
  }

  private reportInstances(instances: readonly InstanceInfo[], force: boolean): void {
    this.hadInstances = true;
    this.lastInstances = instances;
    const table = new Map<string, InstanceInfo>();
    const hostPorts = new Map<string, { host: string; port: number }>();
    for (const instance of instances) {
      // A drained instance stays registered (its lease, its page in the console) but gets no new calls.
      if (instance.metadata[DRAINING_METADATA] === "true") continue;
      const hostPort = experimental.splitHostPort(instance.address);
      if (hostPort?.port === undefined) continue;
      const address = { host: hostPort.host, port: hostPort.port };
      const key = experimental.subchannelAddressToString(address);
      const existing = table.get(key);
      // Two registrations on one address: the newer start wins (a restart under a new id).
      if (!existing || instance.startedAt > existing.startedAt || (instance.startedAt === existing.startedAt && instance.id > existing.id)) {
        table.set(key, instance);
        hostPorts.set(key, address);
      }
    }
    const keys = [...table.keys()].sort();
    const fingerprint = JSON.stringify(keys.map((k) => [k, table.get(k)]));
    if (!force && fingerprint === this.lastReport) return;
    this.lastReport = fingerprint;
    const endpoints = keys.map((k) => ({ addresses: [hostPorts.get(k)!] }));
    const note = endpoints.length === 0 ? `no instances of ${this.service} registered` : "";
    const attributes = { [INSTANCES_ATTRIBUTE]: table as ReadonlyMap<string, InstanceInfo> };
    this.lastAccepted = this.listener(experimental.statusOrFromValue(endpoints), attributes, null, note);
    // After the policy took the set (it rebuilds synchronously): changes queued meanwhile coalesce.
    this.lastReportAt = performance.now();
    if (endpoints.length === 0) {
      // With no endpoints grpc-js's built-in policies queue calls until their deadline
      // (round_robin goes IDLE; pick_first refuses the update). The empty list above has
      // made the policy drop every old endpoint; an error now, with nothing left to
      // drop, makes it fail calls at once with the note as the message.
      this.lastAccepted = this.listener(
        experimental.statusOrFromError({ code: status.UNAVAILABLE, details: note, metadata: new Metadata() }),
        attributes,
        null,
        note,
      );
    }
  }

  /** Only before the first instance set: after that, known endpoints are never replaced by an error. */
  private reportError(message: string): void {
    if (this.hadInstances) return;
    const fingerprint = `error:${message}`;
    if (fingerprint === this.lastReport) return;
    this.lastReport = fingerprint;
    this.lastAccepted = this.listener(
      experimental.statusOrFromError({ code: status.UNAVAILABLE, details: message, metadata: new Metadata() }),
      {},
      null,
      message,
    );
  }
}

let registered = false;

/** Registers the `etcd` scheme with grpc-js. Idempotent; `import "protomesh/registry/etcd/register"` calls it. */
export function registerEtcdResolver(): void {
  if (registered) return;
  registered = true;
  experimental.registerResolver(ETCD_SCHEME, EtcdResolver);
}
