/**
 * What a console module contributes: routes under `/api/<module>/…`, each with
 * the least role allowed to use it. The server does authentication, CSRF and
 * JSON; a handler returns a JSON value or throws `HttpError`.
 */
import type * as http from "node:http";
import type { Role } from "../auth/roles";

export type Method = "GET" | "POST" | "PUT" | "DELETE";

/** The signed-in user a request runs as. */
export interface Actor {
  readonly user: string;
  readonly role: Role;
}

export interface RouteContext {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  /** `:name` segments of the route's path, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly actor: Actor;
  /** The request body parsed as JSON (size-limited); `{}` when empty. */
  json(): Promise<unknown>;
}

export interface Route {
  readonly method: Method;
  /** Path with `:param` segments, e.g. `/api/services/:service`. */
  readonly path: string;
  /** Least role allowed. Writes need `editor` or `admin`. */
  readonly role: Role;
  /**
   * Returns the JSON answer (200). With `stream`, the handler owns the response
   * (server-sent events, HTML) and its return value is ignored.
   */
  readonly handler: (ctx: RouteContext) => unknown;
  readonly stream?: boolean;
}

/** A page of the console: its API routes and what it holds open. */
export interface ConsoleModule {
  /** Short name, also the UI page's id (`services`, `config`). */
  readonly name: string;
  /** Title in the navigation; modules without a page (auth) have none. */
  readonly title?: string;
  readonly routes: readonly Route[];
  /** Things the page wants the UI to know at start (e.g. whether Jaeger is configured). */
  readonly info?: () => unknown;
  close?(): Promise<void>;
}

/** A route path compiled to a matcher. */
export interface CompiledRoute extends Route {
  match(path: string): Record<string, string> | undefined;
}

/** Compiles `/api/x/:a/:b` into a matcher; segments are percent-decoded. */
export function compileRoute(route: Route): CompiledRoute {
  const parts = route.path.split("/").filter(Boolean);
  return {
    ...route,
    match(path: string) {
      const segs = path.split("/").filter(Boolean);
      if (segs.length !== parts.length) return undefined;
      const params: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        let s: string;
        try {
          s = decodeURIComponent(segs[i]!);
        } catch {
          return undefined;
        }
        if (p.startsWith(":")) params[p.slice(1)] = s;
        else if (p !== s) return undefined;
      }
      return params;
    },
  };
}
