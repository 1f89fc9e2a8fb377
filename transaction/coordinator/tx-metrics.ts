/** Prometheus metrics of the coordinator (`protomesh_tx_*`), in protomesh's registry by default. */
import { Counter, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, metricsRegistry } from "../../runtime/metrics";

export interface TxMetrics {
  readonly finished: Counter<"mode" | "status">;
  readonly duration: Histogram<"mode" | "status">;
  readonly branchCalls: Counter<"op" | "verdict">;
  readonly branchSeconds: Histogram<"op">;
  readonly rounds: Counter<"mode">;
}

const byRegistry = new WeakMap<Registry, TxMetrics>();

export function txMetrics(registry: Registry = metricsRegistry): TxMetrics {
  let m = byRegistry.get(registry);
  if (m) return m;
  const registers = [registry];
  m = {
    finished: new Counter({ name: "protomesh_tx_finished_total", help: "Global transactions that reached a final status.", labelNames: ["mode", "status"], registers }),
    duration: new Histogram({ name: "protomesh_tx_duration_seconds", help: "From creation to final status.", labelNames: ["mode", "status"], buckets: [...LATENCY_BUCKETS, 30, 60, 300], registers }),
    branchCalls: new Counter({ name: "protomesh_tx_branch_calls_total", help: "Branch calls made by the coordinator, by how the answer was read.", labelNames: ["op", "verdict"], registers }),
    branchSeconds: new Histogram({ name: "protomesh_tx_branch_call_seconds", help: "Branch call latency.", labelNames: ["op"], buckets: [...LATENCY_BUCKETS], registers }),
    rounds: new Counter({ name: "protomesh_tx_rounds_total", help: "Rounds driven (first attempts and retries).", labelNames: ["mode"], registers }),
  };
  byRegistry.set(registry, m);
  return m;
}
