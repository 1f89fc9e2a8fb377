/**
 * Gauges about service discovery and registration, set by registry backends
 * (`registry/etcd/`): how many instances each watched service has, whether this
 * process's registrations hold their lease, and how often they had to re-register.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { metricsRegistry } from "./metrics";

/** What a registry backend reports; every method is cheap and safe to call on each change. */
export interface RegistryMetrics {
  /** The instance set of `service` as this process currently knows it (after each discovery update). */
  setKnownInstances(service: string, count: number): void;
  /**
   * The lease behind this process's registration of `instanceId`: `held` while it is
   * alive, `lost` while re-registering, `released` once deregistered (the series goes away).
   */
  setLeaseState(service: string, instanceId: string, state: "held" | "lost" | "released"): void;
  /** A registration was put back after its lease or key was lost. */
  countReregistration(service: string): void;
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

/**
 * The registry metrics recorded into `registry` (default: protomesh's), created once.
 *
 * @example
 *   const metrics = registryMetrics();
 *   metrics.setKnownInstances("greeter", instances.length);
 */
export function registryMetrics(registry: Registry = metricsRegistry): RegistryMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const known = new Gauge({
    name: "protomesh_registry_known_instances",
    help: "Instances of a service known to this process's discovery.",
    labelNames: ["service"],
    registers,
  });
  const lease = new Gauge({
    name: "protomesh_registry_lease_held",
    help: "1 while the lease of this process's registration is alive, 0 while it is lost and being re-registered.",
    labelNames: ["service", "instance"],
    registers,
  });
  const reregistrations = new Counter({
    name: "protomesh_registry_reregistrations_total",
    help: "Registrations put back after their lease or key was lost.",
    labelNames: ["service"],
    registers,
  });
  const metrics: RegistryMetrics = {
    setKnownInstances: (service, count) => known.set({ service }, count),
    setLeaseState(service, instance, state) {
      if (state === "released") lease.remove({ service, instance });
      else lease.set({ service, instance }, state === "held" ? 1 : 0);
    },
    countReregistration: (service) => reregistrations.inc({ service }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
