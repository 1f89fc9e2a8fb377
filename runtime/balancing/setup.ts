/**
 * Registers protomesh's LB policies with grpc-js: `protomesh_round_robin`, `p2c`,
 * `least_request` and `consistent_hash`, each balancing inside the subset a service's traffic rule allows.
 * Idempotent; `import "protomesh/registry/etcd/register"` and `createClient` call it.
 */
import { setup as setupConsistentHash } from "./lb-consistent-hash";
import { setupLeastRequest } from "./lb-least-request";
import { setupP2c } from "./lb-p2c";
import { setupRoundRobin } from "./lb-round-robin";

let done = false;

export function setupBalancers(): void {
  if (done) return;
  done = true;
  setupConsistentHash();
  setupRoundRobin();
  setupP2c();
  setupLeastRequest();
}
