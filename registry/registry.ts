/**
 * Backend-neutral registry interfaces. `registry/etcd/` implements them; a server
 * takes a `Registrar`, discovery code takes a `Discovery`.
 */
import type { InstanceInfo } from "../runtime/balancing/instances";

export type { InstanceInfo } from "../runtime/balancing/instances";

/** What a server announces about itself. Filled in by the server at `listen()`. */
export interface Registration {
  service: string;
  address: string;
  /** Defaults to a random id. */
  id?: string;
  version?: string;
  zone?: string;
  weight?: number;
  metadata?: Record<string, string>;
}

/** A live registration; `deregister` removes it (revokes the lease) and stops renewing. */
export interface RegistrationHandle {
  readonly instance: InstanceInfo;
  deregister(): Promise<void>;
}

/** Puts instances into a registry and keeps them there until deregistered. */
export interface Registrar {
  register(registration: Registration): Promise<RegistrationHandle>;
  /** Releases connections; outstanding registrations are deregistered first. */
  close(): Promise<void>;
}

/** A change in a service's instance set. `instances` is always the full current set. */
export interface DiscoveryUpdate {
  readonly instances: readonly InstanceInfo[];
}

/** Lists and watches instances of services. */
export interface Discovery {
  list(service: string): Promise<InstanceInfo[]>;
  /**
   * Calls `onUpdate` with the initial set and after every change; never with an empty set because the backend is unreachable.
   * `onError` hears why there is no initial set yet (backend unreachable); once a set was delivered, errors are not reported.
   * Callbacks are never invoked synchronously from `watch` itself.
   */
  watch(service: string, onUpdate: (update: DiscoveryUpdate) => void, onError?: (error: Error) => void): { stop(): void };
}

export { DISCOVERY_OPTION } from "../runtime/balancing/instances";
