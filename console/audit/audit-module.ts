import type { ConsoleModule } from "../server/route";
import type { AuditLog } from "./audit-log";

/** The Audit log page: who changed what, when, before and after. */
export function auditModule(log: AuditLog): ConsoleModule {
  return {
    name: "audit",
    title: "Audit log",
    routes: [
      {
        method: "GET",
        path: "/api/audit",
        role: "viewer",
        handler: async ({ query }) => ({ entries: await log.list({ limit: Number(query.get("limit") ?? 200) || 200, filter: query.get("q") ?? undefined }) }),
      },
    ],
  };
}
