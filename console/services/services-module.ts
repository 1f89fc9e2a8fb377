/**
 * The Services page's API: service summaries, a filtered window of instances
 * (the browser renders only what is on screen), one instance's details with a
 * live health probe, drain and weight changes, and an event stream that says
 * which services changed.
 */
import type { Etcd3 } from "etcd3";
import { DRAINING_METADATA } from "../../runtime/balancing/instances";
import type { AuditLog } from "../audit/audit-log";
import { EventHub } from "../server/event-stream";
import { HttpError } from "../server/http-error";
import { objectBody } from "../server/http-io";
import type { ConsoleModule } from "../server/route";
import { changeInstance } from "./instance-actions";
import { probeInstance } from "./instance-probe";
import type { InstanceChange, ServiceIndex } from "./service-index";

export interface ServicesModuleDeps {
  readonly index: ServiceIndex;
  readonly etcd: Etcd3;
  readonly namespace: string;
  readonly callTimeoutMs: number;
  readonly audit: AuditLog;
}

export function servicesModule(deps: ServicesModuleDeps): ConsoleModule {
  const { index } = deps;
  const hub = new EventHub<InstanceChange>("changed", (notes) => ({
    services: [...new Set(notes.map((n) => n.service))].sort(),
    changes: notes.length,
    revision: String(index.revision),
    total: index.size,
  }));
  const unsubscribe = index.onChange((change) => hub.publish(change));

  return {
    name: "services",
    title: "Services",
    routes: [
      {
        method: "GET",
        path: "/api/services",
        role: "viewer",
        handler: ({ query }) => ({ services: index.summaries(query.get("q") ?? ""), total: index.size, revision: String(index.revision), problem: index.problem }),
      },
      {
        method: "GET",
        path: "/api/instances",
        role: "viewer",
        handler: ({ query }) =>
          index.instances({
            service: query.get("service") || undefined,
            q: query.get("q") ?? undefined,
            offset: Number(query.get("offset") ?? 0) || 0,
            limit: Number(query.get("limit") ?? 100) || 100,
          }),
      },
      {
        method: "GET",
        path: "/api/instances/:service/:id",
        role: "viewer",
        handler: async ({ params }) => {
          const row = index.get(params.service!, params.id!);
          if (!row) throw new HttpError(404, `${params.service}/${params.id} is not registered`);
          const probe = await probeInstance(deps.etcd, row.address, row.lease, deps.callTimeoutMs);
          return { instance: row, probe };
        },
      },
      {
        method: "POST",
        path: "/api/instances/:service/:id",
        role: "editor",
        handler: async ({ params, json, actor }) => {
          const body = objectBody(await json());
          const change =
            typeof body.draining === "boolean" ? { draining: body.draining } : typeof body.weight === "number" ? { weight: body.weight } : undefined;
          if (!change) throw new HttpError(400, 'send {"draining": true|false} or {"weight": N}');
          const { before, after } = await changeInstance(deps.etcd, deps.namespace, params.service!, params.id!, change, deps.callTimeoutMs);
          const action = "weight" in change ? "instance.weight" : change.draining ? "instance.drain" : "instance.undrain";
          await deps.audit.record({ who: actor.user, via: "console", action, target: `${params.service}/${params.id}`, before, after });
          const row = index.get(params.service!, params.id!);
          // The watch may not have delivered the change yet: answer with the entry as written.
          return { instance: { ...row, ...after, draining: after.metadata[DRAINING_METADATA] === "true" } };
        },
      },
      {
        method: "GET",
        path: "/api/services/events",
        role: "viewer",
        stream: true,
        handler: ({ req, res }) => hub.subscribe(req, res, { revision: String(index.revision), total: index.size }),
      },
    ],
    async close() {
      unsubscribe();
      hub.close();
    },
  };
}
