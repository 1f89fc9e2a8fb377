/**
 * grpc-js gives a picker the call's metadata but not its method. A traffic rule that matches on
 * the method needs it, so for such rules the resolver hands the channel this config selector
 * (grpc-js's extension point for per-call config, gRFC A31): it answers the same method config
 * the default selector would (retry policies from the channel's service config: service and
 * method, then service, then the empty name) and adds the method to the pick information.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";
import { METHOD_PICK_INFO } from "./traffic-attributes";

type ServiceConfig = { methodConfig?: { name?: { service?: string; method?: string }[] }[] };
type CallConfig = ReturnType<experimental.ConfigSelector["invoke"]>;
type MethodConfig = CallConfig["methodConfig"];

// grpc-js validates the channel's default service config this way itself; its minor is pinned.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { validateServiceConfig } = require("@grpc/grpc-js/build/src/service-config") as { validateServiceConfig(obj: unknown): ServiceConfig };

/** Most methods whose config is cached per selector, as grpc-js's default selector. */
const MAX_CACHED = 100;

/** A config selector for a channel whose options carry `grpc.service_config` (or none). */
export function methodConfigSelector(channelOptions: grpc.ChannelOptions): experimental.ConfigSelector {
  let serviceConfig: ServiceConfig | null = null;
  const raw = channelOptions["grpc.service_config"];
  if (typeof raw === "string") {
    try {
      serviceConfig = validateServiceConfig(JSON.parse(raw));
    } catch {
      // The channel refused the same config when it was created; there is no method config to find.
      serviceConfig = null;
    }
  }
  const cache = new Map<string, CallConfig>();
  return {
    invoke(methodName: string): CallConfig {
      let config = cache.get(methodName);
      if (config === undefined) {
        config = {
          methodConfig: findMethodConfig(serviceConfig, methodName),
          pickInformation: { [METHOD_PICK_INFO]: methodName },
          status: grpc.status.OK,
          dynamicFilterFactories: [],
        };
        if (cache.size < MAX_CACHED) cache.set(methodName, config);
      }
      return config;
    },
    unref() {
      cache.clear();
    },
  };
}

function findMethodConfig(serviceConfig: ServiceConfig | null, methodName: string): MethodConfig {
  const [service = "", method = ""] = methodName.split("/").filter((x) => x.length > 0);
  const configs = serviceConfig?.methodConfig ?? [];
  const levels: ((n: { service?: string; method?: string }) => boolean)[] = [
    (n) => n.service === service && n.method === method,
    (n) => n.service === service && !n.method,
    (n) => !n.service && !n.method,
  ];
  for (const level of levels) {
    const found = configs.find((c) => (c.name ?? []).some(level));
    if (found) return found as MethodConfig;
  }
  return { name: [] } as MethodConfig;
}
