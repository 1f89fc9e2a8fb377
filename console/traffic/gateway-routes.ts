/**
 * The routes a gateway that discovers services from the registry would serve:
 * the same route table (`gateway/route-table.ts`) fed the same way, from the
 * descriptors each registered service gives through reflection (the API
 * page's catalog). A service whose annotations cannot be served, or clash
 * with another's, is listed with the gateway's own error instead.
 */
import type { BoundRoute } from "../../gateway/route-table";
import { RouteTable } from "../../gateway/route-table";
import type { DescriptorCatalog } from "../api-docs/descriptor-catalog";

export interface RouteRow {
  /** HTTP verb, upper case. */
  readonly method: string;
  readonly template: string;
  /** `/package.Service/Method`. */
  readonly grpc: string;
  /** The registry name the gateway calls (`etcd:///<name>`). */
  readonly service: string;
  readonly body: string | null;
}

export interface DerivedRoutes {
  readonly routes: RouteRow[];
  /** Registered services whose routes could not be derived, with why. */
  readonly problems: { service: string; error: string }[];
  /** The table itself, for callers that match requests (the HTTP try-it). */
  readonly table: RouteTable;
}

export async function deriveRoutes(catalog: DescriptorCatalog, refresh = false): Promise<DerivedRoutes> {
  const table = new RouteTable(false);
  const problems: { service: string; error: string }[] = [];
  for (const learnt of await catalog.all(refresh)) {
    if (learnt.protoServices.length === 0) continue;
    try {
      table.put({ id: `registry:${learnt.registered}`, target: `etcd:///${learnt.registered}`, files: learnt.files, services: learnt.protoServices });
    } catch (err) {
      problems.push({ service: learnt.registered, error: (err as Error).message });
    }
  }
  const rows = [...table.router.routes].map(row).sort((a, b) => a.template.localeCompare(b.template) || a.method.localeCompare(b.method));
  return { routes: rows, problems, table };
}

function row(r: BoundRoute): RouteRow {
  return { method: r.httpMethod, template: r.template.source, grpc: r.grpcPath, service: r.target.replace(/^etcd:\/\/\//, ""), body: r.body ?? null };
}
