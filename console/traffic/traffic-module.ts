/**
 * The Traffic & gateway page's API: every service's traffic rule (in force,
 * history, diff between versions, edit with the CLI's validation as the
 * operator types, apply, roll back, remove) and every gateway's policy (the
 * same flow), the routes a discovering gateway derives from the registered
 * services, and an event stream that says which rule or policy changed.
 */
import type { Etcd3 } from "etcd3";
import { listConfigApps } from "../config-center/app-list";
import type { EtcdOptions } from "../../registry/etcd/options";
import type { Logger } from "../../runtime/logger";
import type { DescriptorCatalog } from "../api-docs/descriptor-catalog";
import type { AuditLog } from "../audit/audit-log";
import { EventHub } from "../server/event-stream";
import type { ConsoleModule } from "../server/route";
import type { ServiceIndex } from "../services/service-index";
import { gatewayPolicyKind } from "./gateway-policies";
import { deriveRoutes } from "./gateway-routes";
import { PrefixChanges } from "./prefix-changes";
import { listTrafficServices, trafficPrefix } from "./traffic-service-list";
import { trafficRuleKind } from "./traffic-rules";
import { versionedRoutes } from "./versioned-routes";

export interface TrafficModuleDeps {
  readonly etcd: Etcd3;
  readonly etcdOptions: EtcdOptions;
  readonly namespace: string;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly services: ServiceIndex;
  readonly catalog: DescriptorCatalog;
  /** The gateway's base URL, when the console was told of one (shown on the page; used by HTTP try-it). */
  readonly gatewayUrl?: string;
}

/** A change note: which services' rules changed (`"*"`: any), whether a gateway policy did. */
interface Note {
  readonly traffic: readonly string[];
  readonly gateway: boolean;
}

const POLICY_APP = /^[^/]+\/gateway\.[^/]+\//;

export function trafficModule(deps: TrafficModuleDeps): ConsoleModule {
  const rules = trafficRuleKind(deps.etcdOptions);
  const policies = gatewayPolicyKind(deps.etcdOptions);
  const hub = new EventHub<Note>("changed", (notes) => ({
    traffic: [...new Set(notes.flatMap((n) => n.traffic))].sort(),
    gateway: notes.some((n) => n.gateway),
  }));
  const watches = [
    new PrefixChanges({
      client: deps.etcd,
      prefix: trafficPrefix(deps.namespace),
      callTimeoutMs: deps.callTimeoutMs,
      logger: deps.logger,
      onChange: (keys) => hub.publish({ traffic: keys ? keys.map((k) => k.split("/")[0]!) : ["*"], gateway: false }),
    }),
    new PrefixChanges({
      client: deps.etcd,
      prefix: `/protomesh/${deps.namespace}/config/`,
      callTimeoutMs: deps.callTimeoutMs,
      logger: deps.logger,
      onChange: (keys) => {
        if (!keys || keys.some((k) => POLICY_APP.test(k))) hub.publish({ traffic: [], gateway: true });
      },
    }),
  ];
  for (const w of watches) w.start();

  return {
    name: "traffic",
    title: "Traffic & gateway",
    info: () => ({ gatewayUrl: deps.gatewayUrl ?? null }),
    routes: [
      {
        method: "GET",
        path: "/api/traffic/services",
        role: "viewer",
        handler: async () => {
          const withRules = await listTrafficServices(deps.etcd, deps.namespace, deps.callTimeoutMs);
          const registered = new Map(deps.services.summaries().map((s) => [s.name, s.instances]));
          const names = [...new Set([...withRules.map((r) => r.service), ...registered.keys()])].sort();
          const inForce = new Map(withRules.map((r) => [r.service, r.inForce]));
          return { services: names.map((service) => ({ service, hasHistory: inForce.has(service), inForce: inForce.get(service) ?? false, instances: registered.get(service) ?? 0 })) };
        },
      },
      ...versionedRoutes(rules, deps.audit),
      {
        method: "GET",
        path: "/api/gateway/policies",
        role: "viewer",
        handler: async () => {
          const found = (await listConfigApps(deps.etcd, deps.namespace)).filter((a) => a.app.startsWith("gateway.")).map((a) => ({ env: a.env, gateway: a.app.slice("gateway.".length) }));
          // The gateway a plain `protomesh gateway` uses, so a first policy can be written from the page.
          if (!found.some((g) => g.env === "default" && g.gateway === "default")) found.push({ env: "default", gateway: "default" });
          return { gateways: found, gatewayUrl: deps.gatewayUrl ?? null };
        },
      },
      ...versionedRoutes(policies, deps.audit),
      {
        method: "GET",
        path: "/api/gateway/routes",
        role: "viewer",
        handler: async ({ query }) => {
          const derived = await deriveRoutes(deps.catalog, query.get("refresh") === "1");
          return { routes: derived.routes, problems: derived.problems };
        },
      },
      {
        method: "GET",
        path: "/api/traffic/events",
        role: "viewer",
        stream: true,
        handler: ({ req, res }) => hub.subscribe(req, res, {}),
      },
    ],
    async close() {
      await Promise.all(watches.map((w) => w.stop()));
      hub.close();
      rules.close();
      policies.close();
    },
  };
}
