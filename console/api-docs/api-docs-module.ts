/**
 * The API page: the `protomesh docs` page for each registered service, built
 * from what its instances say through reflection, with "try it" wired to the
 * console (calls go through the registry, as an editor).
 */
import { allows } from "../auth/roles";
import { buildModel } from "../../apidocs/model";
import { renderHtml } from "../../apidocs/html";
import { RpcError, Status } from "../../runtime/errors";
import { CSRF_HEADER, type Sessions } from "../auth/sessions";
import { HttpError } from "../server/http-error";
import { objectBody, SECURITY_HEADERS } from "../server/http-io";
import type { ConsoleModule } from "../server/route";
import type { DescriptorCatalog } from "./descriptor-catalog";
import type { TryCalls } from "./try-calls";
import { codeName } from "./try-calls";
import { sourceRoutes, type BoundRoute } from "../../gateway/route-table";
import { callThroughGateway } from "./http-try";
import type { LearntService } from "./descriptor-catalog";

/**
 * With `gatewayUrl`, methods that have a gateway route can also be tried over
 * HTTP through that gateway (the routes come from the same annotations the
 * gateway reads).
 */
export function apiDocsModule(catalog: DescriptorCatalog, calls: TryCalls, sessions: () => Sessions | undefined, gatewayUrl?: string): ConsoleModule {
  /** The gateway's routes for one service's methods, by gRPC path (the first binding of each). */
  const routesOf = (learnt: LearntService): Map<string, BoundRoute> => {
    const out = new Map<string, BoundRoute>();
    if (!gatewayUrl) return out;
    try {
      for (const r of sourceRoutes({ id: learnt.registered, target: `etcd:///${learnt.registered}`, files: learnt.files, services: learnt.protoServices }, false)) {
        if (!out.has(r.grpcPath)) out.set(r.grpcPath, r);
      }
    } catch {
      // Annotations the gateway cannot serve: no HTTP try-it (the Traffic & gateway page names the problem).
    }
    return out;
  };
  return {
    name: "api",
    title: "API",
    routes: [
      {
        method: "GET",
        path: "/api/apidocs/services",
        role: "viewer",
        handler: async ({ query }) => ({
          services: (await catalog.all(query.get("refresh") === "1")).map((s) => ({ name: s.registered, protoServices: s.protoServices, from: s.from, error: s.error })),
        }),
      },
      {
        method: "GET",
        path: "/api/apidocs/page/:service",
        role: "viewer",
        stream: true,
        handler: async ({ params, req, res }) => {
          const learnt = await catalog.service(params.service!);
          if (learnt.protoServices.length === 0) throw new HttpError(404, learnt.error ?? `${params.service} serves no services through reflection`);
          const registry = catalog.registry([learnt]);
          const files = [...new Set(learnt.protoServices.map((n) => registry.getService(n)?.file.proto.name).filter((f): f is string => !!f))];
          const endpoint = `/api/apidocs/call/${encodeURIComponent(params.service!)}`;
          const httpRoutes = Object.fromEntries([...routesOf(learnt)].map(([path, r]) => [path, `${r.httpMethod.toUpperCase()} ${r.template.source}`]));
          let html = renderHtml(buildModel(registry, files), { tryEndpoint: endpoint, target: `etcd:///${params.service}`, httpRoutes, httpVia: gatewayUrl });
          const session = sessions()?.fromCookie(req.headers.cookie);
          // The page's own script posts with fetch; give those posts the session's CSRF header.
          const token = JSON.stringify(session?.csrf ?? "").replace(/</g, "\\u003c");
          html = html.replace(
            "<head>",
            `<head>\n<script>(function(f){window.fetch=function(u,o){o=o||{};o.headers=Object.assign({}, o.headers, {"${CSRF_HEADER}": ${token}});return f(u,o);};})(window.fetch);</script>`,
          );
          res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS });
          res.end(html);
        },
      },
      {
        method: "POST",
        path: "/api/apidocs/call/:service",
        role: "viewer",
        handler: async ({ params, json, actor }) => {
          if (!allows(actor.role, "editor")) {
            return { ok: false, code: Status.PERMISSION_DENIED, codeName: codeName(Status.PERMISSION_DENIED), message: `${actor.user} is a viewer; trying calls needs the editor role` };
          }
          const body = objectBody(await json());
          const learnt = await catalog.service(params.service!);
          if (learnt.protoServices.length === 0) {
            const e = new RpcError(Status.FAILED_PRECONDITION, learnt.error ?? "no descriptors");
            return { ok: false, code: e.code, codeName: codeName(e.code), message: e.rawMessage };
          }
          if (body.via === "http") {
            if (!gatewayUrl) return { ok: false, code: Status.FAILED_PRECONDITION, codeName: codeName(Status.FAILED_PRECONDITION), message: "the console was started without a gateway (--gateway URL)" };
            const route = typeof body.method === "string" ? routesOf(learnt).get(body.method) : undefined;
            if (!route) return { ok: false, code: Status.NOT_FOUND, codeName: codeName(Status.NOT_FOUND), message: `${String(body.method)} has no gateway route (no google.api.http annotation)` };
            const requests = Array.isArray(body.requests) ? body.requests : [];
            if (requests.length !== 1) return { ok: false, code: Status.INVALID_ARGUMENT, codeName: codeName(Status.INVALID_ARGUMENT), message: "over HTTP, give exactly one request message" };
            const headers: Record<string, string> = {};
            if (typeof body.metadata === "object" && body.metadata !== null) for (const [k, v] of Object.entries(body.metadata as Record<string, unknown>)) headers[k] = String(v);
            const deadlineMs = typeof body.deadlineMs === "number" && body.deadlineMs > 0 ? Math.min(body.deadlineMs, 120_000) : 15_000;
            return callThroughGateway(gatewayUrl, route, requests[0], { headers, deadlineMs });
          }
          return calls.call(catalog.registry([learnt]), body, `etcd:///${params.service}`);
        },
      },
    ],
    close: async () => calls.close(),
  };
}
