/**
 * Registry entries as Prometheus targets (the JSON that `http_sd_configs` and `file_sd_configs`
 * read): one group per instance, its `/metrics` address, and the instance's registry labels as
 * plain target labels. Prometheus attaches target labels to every series it scrapes, so a query
 * can compare `version="v2"` with `version="v1"` although the instance's own series carry only
 * method and code labels. Plain names, not `__meta_*`: no relabelling needed in the config.
 */
import type { InstanceInfo } from "../../runtime/balancing/instances";

/** One entry of the service-discovery JSON list. */
export interface TargetGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

/** Registration metadata the runtime writes for its own use, not worth a label (and a series split) each. */
const SKIPPED_METADATA = new Set(["metrics_port"]);
const SKIPPED_PREFIX = "protomesh.";
/** Labels set from the registration's own fields (they win over metadata of the same name), and Prometheus's. */
const RESERVED = new Set(["namespace", "service", "id", "version", "zone", "job", "instance"]);

/**
 * A Prometheus label name for a metadata key, the way the release's PromQL selector spells it
 * (`[^a-zA-Z0-9_]` → `_`), so a canary chosen by `track=canary` is found as `track="canary"`.
 */
export function labelName(key: string): string {
  const name = key.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** The address Prometheus scrapes: the instance's host and its advertised `metrics_port`. */
export function metricsAddress(instance: InstanceInfo): string | undefined {
  const port = instance.metadata.metrics_port;
  if (port === undefined || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return undefined;
  return `${instance.address.slice(0, instance.address.lastIndexOf(":"))}:${port}`;
}

/**
 * Target groups for `instances`. Instances without a (valid) `metrics_port` serve no metrics and
 * are left out; `skipped` names them.
 */
export function prometheusTargets(namespace: string, instances: readonly InstanceInfo[]): { groups: TargetGroup[]; skipped: string[] } {
  const groups: TargetGroup[] = [];
  const skipped: string[] = [];
  for (const i of instances) {
    const address = metricsAddress(i);
    if (address === undefined) {
      skipped.push(`${i.service}/${i.id}`);
      continue;
    }
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(i.metadata)) {
      const name = labelName(key);
      if (SKIPPED_METADATA.has(key) || key.startsWith(SKIPPED_PREFIX) || name.startsWith("__") || RESERVED.has(name) || value === "") continue;
      labels[name] = value;
    }
    Object.assign(labels, { namespace, service: i.service, id: i.id });
    // An empty label is no label to Prometheus; leaving it out keeps the JSON honest.
    if (i.version !== "") labels.version = i.version;
    if (i.zone !== "") labels.zone = i.zone;
    groups.push({ targets: [address], labels });
  }
  groups.sort((a, b) => (a.labels.service! + a.labels.id!).localeCompare(b.labels.service! + b.labels.id!));
  return { groups, skipped };
}
