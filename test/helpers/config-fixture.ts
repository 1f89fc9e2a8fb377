/**
 * Config specs' plumbing: stores and loaded configs on the suite's etcd, each
 * spec in its own namespace, all closed after each spec.
 */
import { load, openStore, type ConfigStore, type LiveConfig, type LoadOptions, type StoreOptions } from "../../config";
import type { GreeterConfig } from "../../gen/examples/greeter/v1/greeter_config";
import { captureLogger, type CapturedLogger } from "./capture-logger";
import { uniqueNamespace, type EtcdFixture } from "./etcd";
import { GreeterConfigDefinition } from "./greeter-config";

export interface ConfigFixture {
  /** This spec's namespace (fresh for each spec). */
  readonly namespace: string;
  store(options?: Partial<StoreOptions>): ConfigStore;
  load(options?: Partial<LoadOptions<GreeterConfig>>): Promise<LiveConfig<GreeterConfig>>;
  /** A logger to pass in and inspect. */
  logger(): CapturedLogger;
}

export function useConfigFixture(etcd: EtcdFixture, defaults: { app?: string; env?: string } = {}): ConfigFixture {
  let namespace = uniqueNamespace();
  const stores: ConfigStore[] = [];
  const configs: LiveConfig<GreeterConfig>[] = [];
  beforeEach(() => {
    namespace = uniqueNamespace();
  });
  afterEach(async () => {
    await Promise.all(configs.splice(0).map((c) => c.close()));
    for (const s of stores.splice(0)) s.close();
  });
  const base = () => ({ endpoints: etcd.endpoints, namespace, app: defaults.app ?? "greeter", env: defaults.env ?? "test" });
  return {
    get namespace() {
      return namespace;
    },
    store(options = {}) {
      const s = openStore({ ...base(), schema: GreeterConfigDefinition, logger: captureLogger(), ...options });
      stores.push(s);
      return s;
    },
    async load(options = {}) {
      const c = await load(GreeterConfigDefinition, { ...base(), logger: captureLogger(), ...options });
      configs.push(c);
      return c;
    },
    logger: () => captureLogger(),
  };
}
