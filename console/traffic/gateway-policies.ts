/**
 * Gateway policies as a versioned document for the console: the config of app
 * `gateway.<name>` in an environment, read and written through the gateway's
 * own `PolicyStore` and checked by `checkPolicy`, as `protomesh gateway
 * policy apply` does (and as every gateway does again before applying it).
 */
import { parse as parseYaml } from "yaml";
import { ConfigError, ConfigValidationError, ConflictError } from "../../config/errors";
import { checkName } from "../../config/keys";
import type { EtcdOptions } from "../../registry/etcd/options";
import { PolicyValidationError } from "../../gateway/policy";
import { PolicyStore, policyApp } from "../../gateway/policy-store";
import { checkPolicy, validatePolicy } from "../../gateway/policy-validate";
import { HttpError } from "../server/http-error";
import { StoreCache } from "./store-cache";
import type { DocKind } from "./versioned-routes";

export function gatewayPolicyKind(etcdOptions: EtcdOptions): DocKind & { close(): void } {
  const stores = new StoreCache<PolicyStore>();
  return {
    base: "/api/gateway/policies/:env/:gateway",
    action: "gateway.policy",
    open(params) {
      const env = params.env ?? "";
      const gateway = params.gateway ?? "";
      try {
        checkName(env, "env");
        checkName(policyApp(gateway), "app");
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
      const { store } = stores.get(`${env}/${gateway}`, () => new PolicyStore({ ...etcdOptions, gateway, env }));
      return {
        target: `${policyApp(gateway)}@${env}`,
        current: () => store.current(),
        history: (limit) => store.history({ limit }),
        get: (version) => store.get(version),
        write(policy, m) {
          validatePolicy(policy);
          return store.write(policy, m);
        },
        async rollback(version, m) {
          validatePolicy((await store.get(version)).value);
          return store.rollback(version, m);
        },
      };
    },
    parse(text) {
      const value: unknown = parseYaml(text, { uniqueKeys: true });
      if (value === null || value === undefined) throw new Error("the policy is empty: it is an object ({} for no settings)");
      return value;
    },
    validate: (policy) => checkPolicy(policy),
    mapError(err) {
      if (err instanceof PolicyValidationError) return new HttpError(400, err.message, { issues: err.issues });
      if (err instanceof ConflictError) return new HttpError(409, err.message);
      if (err instanceof ConfigValidationError) return new HttpError(400, err.message, { issues: err.issues });
      if (err instanceof ConfigError) return new HttpError(/no version|not found|does not exist/i.test(err.message) ? 404 : 400, err.message);
      return undefined;
    },
    close: () => stores.close(),
  };
}
