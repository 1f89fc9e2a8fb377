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

export function apiDocsModule(catalog: DescriptorCatalog, calls: TryCalls, sessions: () => Sessions | undefined): ConsoleModule {
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
          let html = renderHtml(buildModel(registry, files), { tryEndpoint: endpoint, target: `etcd:///${params.service}` });
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
          return calls.call(catalog.registry([learnt]), body, `etcd:///${params.service}`);
        },
      },
    ],
    close: async () => calls.close(),
  };
}
