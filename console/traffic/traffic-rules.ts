/**
 * Traffic rules as a versioned document for the console: the rule store of
 * `protomesh traffic` (traffic/store.ts), its text parser and its validator,
 * so the page accepts exactly what `protomesh traffic apply` accepts.
 */
import type { EtcdOptions } from "../../registry/etcd/options";
import { checkSegment } from "../../registry/etcd/keys";
import { validateTrafficRule } from "../../runtime/balancing/rule-compile";
import { TrafficRuleError } from "../../runtime/balancing/rule-errors";
import { parseRuleText } from "../../traffic/rule-text";
import { openTrafficStore, TrafficStoreError, type TrafficStore } from "../../traffic/store";
import { HttpError } from "../server/http-error";
import { StoreCache } from "./store-cache";
import type { DocKind } from "./versioned-routes";

export function trafficRuleKind(etcdOptions: EtcdOptions): DocKind & { close(): void } {
  const stores = new StoreCache<TrafficStore>();
  return {
    base: "/api/traffic/rules/:service",
    action: "traffic",
    open(params) {
      const service = params.service ?? "";
      try {
        checkSegment(service, "service");
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
      const store = stores.get(service, () => openTrafficStore({ ...etcdOptions, service }));
      return {
        target: `traffic/${service}`,
        current: () => store.current(),
        history: (limit) => store.history({ limit }),
        get: (version) => store.get(version),
        write: (rule, m) => store.write(rule, m),
        rollback: (version, m) => store.rollback(version, m),
        remove: (m) => store.remove({ expectVersion: m.expectVersion }),
      };
    },
    parse: (text) => parseRuleText(text, "the rule"),
    validate: (rule) => validateTrafficRule(rule).map((p) => ({ path: p.path, message: p.message })),
    mapError(err) {
      if (err instanceof TrafficRuleError) return new HttpError(400, `invalid rule: ${err.message}`, { issues: err.problems });
      if (err instanceof TrafficStoreError) return new HttpError(/has no traffic rule version/.test(err.message) ? 404 : 409, err.message);
      return undefined;
    },
    close: () => stores.close(),
  };
}
