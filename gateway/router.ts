import { compareSpecificity, splitPath, type CompiledTemplate } from "./path-match";

/**
 * The route table: HTTP method + path → the route and its path variables.
 * Templates are tried most specific first; a custom verb is recognised only
 * when some route registered it, so `/v1/a:b` still reaches `/v1/{name}` when
 * no route has the verb `b` (the mistake of envoyproxy/envoy#13920).
 */

/** The part of a route the router needs. */
export interface Routable {
  readonly httpMethod: string;
  readonly compiled: CompiledTemplate;
}

export type RouteMatch<R> =
  | { readonly kind: "found"; readonly route: R; readonly variables: Map<string, string> }
  | { readonly kind: "not-found" }
  | { readonly kind: "method-not-allowed"; readonly allow: readonly string[] };

export class Router<R extends Routable> {
  private readonly byMethod = new Map<string, R[]>();
  private readonly all: R[] = [];
  private readonly verbs = new Set<string>();

  constructor(routes: readonly R[]) {
    for (const r of routes) {
      let list = this.byMethod.get(r.httpMethod);
      if (!list) this.byMethod.set(r.httpMethod, (list = []));
      list.push(r);
      this.all.push(r);
      if (r.compiled.template.verb !== undefined) this.verbs.add(r.compiled.template.verb);
    }
    for (const list of this.byMethod.values()) list.sort((a, b) => compareSpecificity(a.compiled, b.compiled));
    this.all.sort((a, b) => compareSpecificity(a.compiled, b.compiled));
  }

  get routes(): readonly R[] {
    return this.all;
  }

  /** Finds the route for `httpMethod` and `path` (the URL path, still percent-encoded). Throws `PathError` for a path that matched but cannot be used. */
  match(httpMethod: string, path: string): RouteMatch<R> {
    const split = splitPath(path);
    if (!split) return { kind: "not-found" };
    const found = this.search(this.byMethod.get(httpMethod) ?? [], split);
    if (found) return found;
    const allow = new Set<string>();
    for (const [method, list] of this.byMethod) {
      if (method === httpMethod) continue;
      if (this.search(list, split, true)) allow.add(method);
    }
    if (allow.size > 0) return { kind: "method-not-allowed", allow: [...allow].sort() };
    return { kind: "not-found" };
  }

  private search(list: readonly R[], split: ReturnType<typeof splitPath> & object, quiet = false): RouteMatch<R> & { kind: "found" } | undefined {
    const verb = split.verb !== undefined && this.verbs.has(split.verb) ? split.verb : undefined;
    if (verb !== undefined) {
      for (const r of list) {
        if (r.compiled.template.verb !== verb) continue;
        const vars = attempt(r, split.segmentsWithoutVerb!, quiet);
        if (vars) return { kind: "found", route: r, variables: vars };
      }
    }
    for (const r of list) {
      if (r.compiled.template.verb !== undefined) continue;
      const vars = attempt(r, split.segments, quiet);
      if (vars) return { kind: "found", route: r, variables: vars };
    }
    return undefined;
  }
}

function attempt(r: Routable, segments: readonly string[], quiet: boolean): Map<string, string> | undefined {
  if (!quiet) return r.compiled.match(segments);
  try {
    return r.compiled.match(segments);
  } catch {
    return new Map();
  }
}
