/**
 * Health of every registered instance of a service: one probe per instance, at once, and a
 * table an operator reads at a glance.
 */
import type { InstanceInfo } from "../../runtime/balancing/instances";
import { createEtcdClient, resolveEtcdOptions } from "../../registry/etcd/options";
import { checkSegment } from "../../registry/etcd/keys";
import { listInstances } from "../instances";
import { probe, ProbeExit, type ProbeExitCode, type ProbeOptions, type ProbeResult } from "./probe";

export interface InstanceHealth extends ProbeResult {
  readonly instance: InstanceInfo;
}

export interface ServiceHealth {
  readonly results: InstanceHealth[];
  /** Registry entries that could not be read. */
  readonly skipped: string[];
  /** 0 when every instance is SERVING; else the first failure's code in the order 2, 3, 4. */
  readonly exit: ProbeExitCode;
}

/** Probes every instance of `service`; a string says why the registry could not be read. */
export async function probeService(service: string, options: ProbeOptions, env: NodeJS.ProcessEnv): Promise<ServiceHealth | string> {
  let resolved;
  try {
    checkSegment(service, "service");
    resolved = resolveEtcdOptions({ endpoints: env.ETCD_ENDPOINTS === undefined ? undefined : env.ETCD_ENDPOINTS.split(",") }, env);
  } catch (err) {
    return (err as Error).message;
  }
  const client = createEtcdClient(resolved);
  let listed;
  try {
    listed = await listInstances(client, resolved.namespace, service);
  } catch (err) {
    return `cannot read the registry at ${resolved.endpoints.join(",")}: ${(err as Error).message}`;
  } finally {
    client.close();
  }
  if (listed.instances.length === 0) return `no instances of ${JSON.stringify(service)} are registered in namespace ${JSON.stringify(resolved.namespace)}`;
  const results = await Promise.all(listed.instances.map(async (instance) => ({ ...(await probe(instance.address, options)), instance })));
  const codes = new Set(results.map((r) => r.exit));
  const exit = ([ProbeExit.connectFailed, ProbeExit.rpcFailed, ProbeExit.notServing] as const).find((c) => codes.has(c)) ?? ProbeExit.serving;
  return { results, skipped: listed.skipped, exit };
}

/** Aligned columns: instance, address, version, zone, status, time. */
export function formatTable(results: readonly InstanceHealth[]): string {
  const rows = [
    ["INSTANCE", "ADDRESS", "VERSION", "ZONE", "STATUS", "TIME"],
    ...results.map((r) => [r.instance.id, r.address, r.instance.version || "-", r.instance.zone || "-", r.status ?? statusOf(r.exit), `${Math.round(r.elapsedMs)}ms`]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "));
  const serving = results.filter((r) => r.exit === ProbeExit.serving).length;
  return `${lines.join("\n")}\n${serving}/${results.length} SERVING\n`;
}

function statusOf(exit: ProbeExitCode): string {
  return exit === ProbeExit.connectFailed ? "UNREACHABLE" : exit === ProbeExit.rpcFailed ? "RPC_FAILED" : "UNKNOWN";
}
