/**
 * The console's HTTP server: the built UI, `/api/session`, sign-in, and the
 * routes of every page module, behind one gate that checks the session, the
 * role and (for writes) the CSRF token. Modules never see an unauthenticated
 * request; the etcd client and its credentials stay in this process.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../runtime/logger";
import { allows } from "../auth/roles";
import { csrfMatches, CSRF_HEADER, Sessions, type Session } from "../auth/sessions";
import type { UserStore } from "../auth/users";
import { checkAuthMode, hostAllowed, originAllowed, type AuthMode } from "./access";
import { HttpError } from "./http-error";
import { objectBody, readJson, sendJson, stringField } from "./http-io";
import { compileRoute, type CompiledRoute, type ConsoleModule, type Route } from "./route";
import { serveStatic } from "./static-files";

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly auth: AuthMode;
  readonly users: UserStore;
  readonly modules: readonly ConsoleModule[];
  readonly assetsDir: string;
  readonly logger: Logger;
  /** Marks the session cookie `Secure` (behind an HTTPS proxy). */
  readonly secureCookies?: boolean;
  /** Routes reachable without a session (machine endpoints such as the OTLP receiver). */
  readonly publicRoutes?: readonly Route[];
}

export interface RunningHttpServer {
  readonly url: string;
  readonly port: number;
  readonly sessions: Sessions;
  close(): Promise<void>;
}

/** A local user on a console without sign-in. */
const LOCAL_USER = "local";

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  checkAuthMode(options.host, options.auth);
  const sessions = new Sessions();
  const routes: CompiledRoute[] = options.modules.flatMap((m) => m.routes.map(compileRoute));
  const publicRoutes = (options.publicRoutes ?? []).map(compileRoute);
  const secure = options.secureCookies ?? false;

  const pages = () =>
    options.modules.filter((m) => m.title).map((m) => ({ name: m.name, title: m.title, info: m.info?.() }));

  const sessionAnswer = (s: Session) => ({ user: s.user, role: s.role, csrf: s.csrf, auth: options.auth, pages: pages() });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://console");
    const path = url.pathname;
    const method = (req.method ?? "GET").toUpperCase();
    if (!hostAllowed(options.host, req.headers.host)) throw new HttpError(403, "this Host is not accepted; open the console at the address it printed");

    for (const route of publicRoutes) {
      const params = route.method === method ? route.match(path) : undefined;
      if (params) return void (await runRoute(route, params, url, req, res, { user: "anonymous", role: "viewer" }));
    }
    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") throw new HttpError(405, "use GET");
      return serveStatic(options.assetsDir, path, res);
    }

    const write = method !== "GET" && method !== "HEAD";
    if (write && !originAllowed(req.headers.origin, req.headers.host)) throw new HttpError(403, "writes are accepted only from the console's own page");
    let session = sessions.fromCookie(req.headers.cookie);

    if (path === "/api/session" && method === "GET") {
      if (!session && options.auth === "none") {
        session = sessions.create(LOCAL_USER, "admin");
        return sendJson(res, 200, sessionAnswer(session), { "set-cookie": sessions.cookie(session, secure) });
      }
      if (!session) return sendJson(res, 401, { error: "sign in", auth: options.auth });
      return sendJson(res, 200, sessionAnswer(session));
    }
    if (path === "/api/login" && method === "POST") {
      const body = objectBody(await readJson(req));
      const name = stringField(body, "user", { max: 64 });
      const user = await options.users.authenticate(name, stringField(body, "password", { max: 1024 }));
      if (!user) {
        options.logger.warn("console sign-in refused", { user: name });
        throw new HttpError(401, "wrong user name or password");
      }
      if (session) sessions.end(session.id);
      const created = sessions.create(user.name, user.role);
      return sendJson(res, 200, sessionAnswer(created), { "set-cookie": sessions.cookie(created, secure) });
    }
    if (!session) throw new HttpError(401, "sign in first");
    if (write && !csrfMatches(session, req.headers[CSRF_HEADER])) throw new HttpError(403, `missing or wrong ${CSRF_HEADER} header: reload the page`);
    if (path === "/api/logout" && method === "POST") {
      sessions.end(session.id);
      return sendJson(res, 200, { ok: true }, { "set-cookie": sessions.cookie(undefined, secure) });
    }
    for (const route of routes) {
      if (route.method !== method) continue;
      const params = route.match(path);
      if (!params) continue;
      if (!allows(session.role, route.role)) throw new HttpError(403, `${session.user} is a ${session.role}; this needs the ${route.role} role`);
      return runRoute(route, params, url, req, res, { user: session.user, role: session.role });
    }
    throw new HttpError(404, `no such API: ${method} ${path}`);
  }

  async function runRoute(route: CompiledRoute, params: Record<string, string>, url: URL, req: http.IncomingMessage, res: http.ServerResponse, actor: { user: string; role: Session["role"] }): Promise<void> {
    const result = await route.handler({ req, res, params, query: url.searchParams, actor, json: () => readJson(req) });
    if (!route.stream) sendJson(res, 200, result);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message, ...(err.details === undefined ? {} : { details: err.details }) });
      options.logger.error("console request failed", { err, url: req.url });
      sendJson(res, 500, { error: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
