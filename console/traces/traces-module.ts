/**
 * The Traces page's API: search, one trace with its call tree (serial vs
 * parallel stages), RED per service, and a live note when new traces arrive.
 * The embedded OTLP/HTTP receiver (`POST /v1/traces`, protobuf or JSON, see
 * otlp-receiver.ts) is a public route: exporters do not sign in; what it
 * accepts is size-limited and bounded in memory.
 */
import { EventHub } from "../server/event-stream";
import { HttpError } from "../server/http-error";
import type { ConsoleModule, Route } from "../server/route";
import { callTree } from "./call-tree";
import { OTLP_PATH, otlpReceiverRoute } from "./otlp-receiver";
import type { RedMetrics } from "./red-metrics";
import { summarize, type TraceQuery, type TraceSource } from "./span";
import type { TraceStore } from "./trace-store";


export interface TracesModuleDeps {
  readonly store?: TraceStore;
  readonly jaeger?: TraceSource;
  readonly red: RedMetrics;
}

export function tracesModule(deps: TracesModuleDeps): { module: ConsoleModule; publicRoutes: Route[] } {
  const hub = new EventHub<string>("traces", (ids) => ({ traces: [...new Set(ids)].length }));
  const unsubscribe = deps.store?.onAdd((ids) => ids.forEach((id) => hub.publish(id)));

  const source = (name: string | null): TraceSource => {
    const s = name === "jaeger" ? deps.jaeger : name === "memory" || !name ? (deps.store ?? deps.jaeger) : undefined;
    if (!s) throw new HttpError(400, name === "jaeger" ? "no Jaeger query API configured (start the console with --jaeger URL)" : `unknown trace source ${JSON.stringify(name)}`);
    return s;
  };

  const numberParam = (v: string | null) => (v === null || v === "" ? undefined : Number.isFinite(Number(v)) ? Number(v) : undefined);

  const receiver = otlpReceiverRoute(deps.store);

  const module: ConsoleModule = {
    name: "traces",
    title: "Traces",
    info: () => ({ sources: [...(deps.store ? ["memory"] : []), ...(deps.jaeger ? ["jaeger"] : [])], receiver: deps.store ? OTLP_PATH : null }),
    routes: [
      {
        method: "GET",
        path: "/api/traces",
        role: "viewer",
        handler: async ({ query }) => {
          const status = query.get("status");
          const q: TraceQuery = {
            service: query.get("service") || undefined,
            method: query.get("method") || undefined,
            status: status === "error" || status === "ok" ? status : undefined,
            minMs: numberParam(query.get("minMs")),
            maxMs: numberParam(query.get("maxMs")),
            limit: numberParam(query.get("limit")) ?? 50,
          };
          const s = source(query.get("source"));
          try {
            return { source: s.name, traces: await s.search(q), stored: deps.store?.size };
          } catch (err) {
            throw new HttpError(502, (err as Error).message);
          }
        },
      },
      {
        method: "GET",
        path: "/api/traces/red",
        role: "viewer",
        handler: async () => ({ services: await deps.red.compute() }),
      },
      {
        method: "GET",
        path: "/api/traces/events",
        role: "viewer",
        stream: true,
        handler: ({ req, res }) => hub.subscribe(req, res),
      },
      {
        method: "GET",
        path: "/api/traces/:id",
        role: "viewer",
        handler: async ({ params, query }) => {
          const spans = await source(query.get("source")).get(params.id!);
          if (!spans || spans.length === 0) throw new HttpError(404, `trace ${params.id} is not held (the receiver keeps the latest traces only)`);
          return { summary: summarize(params.id!, spans), rows: callTree(spans) };
        },
      },
    ],
    async close() {
      unsubscribe?.();
      hub.close();
    },
  };
  return { module, publicRoutes: [receiver] };
}
