import { createFileRegistry } from "@bufbuild/protobuf";
import { file_google_protobuf_struct } from "@bufbuild/protobuf/wkt";
import { buildFile } from "../runtime/proto-builder";
import type { ConfigSchema } from "../config/definition";
import { openStore, type ConfigStore, type StoreOptions } from "../config/store";
import type { VersionRecord } from "../config/records";
import type { Logger } from "../runtime/logger";
import type { GatewayPolicy } from "./policy";
import { checkPolicy, validatePolicy } from "./policy-validate";

/**
 * Gateway policies live in the config center, as the config of app
 * `gateway.<name>` in an environment: numbered immutable versions with
 * author, comment and time, history and rollback to any version, all through
 * the config store's guarded etcd transactions. The document is a JSON object
 * (stored as a `google.protobuf.Struct`) checked by {@link checkPolicy} before
 * every write and again before a gateway applies it.
 */

// The document's top level as a message (so the config store rejects unknown
// top-level keys itself); each section is a Struct that checkPolicy reads.
function policySchema(): ConfigSchema {
  const struct = { message: ".google.protobuf.Struct" } as const;
  const file = buildFile({
    name: "protomesh/gateway/policy.proto",
    package: "protomesh.gateway",
    messages: [{
      name: "GatewayPolicy",
      fields: [
        { name: "defaults", number: 1, type: struct },
        { name: "services", number: 2, type: struct },
        { name: "methods", number: 3, type: struct },
        { name: "jwt", number: 4, type: struct },
        { name: "api_keys", number: 5, type: struct },
        { name: "traffic", number: 6, type: struct },
      ],
    }],
  });
  file.dependency = ["google/protobuf/struct.proto"];
  const registry = createFileRegistry(file, (name) => (name === "google/protobuf/struct.proto" ? file_google_protobuf_struct : undefined));
  return { typeName: "protomesh.gateway.GatewayPolicy", desc: registry.getMessage("protomesh.gateway.GatewayPolicy")!, registry };
}

const POLICY_SCHEMA = policySchema();

export interface PolicyStoreOptions extends Omit<StoreOptions, "app" | "schema"> {
  /** Gateway name: gateways sharing a name share a policy (default "default"). */
  gateway?: string;
}

/** The config-center app that holds a gateway's policy. */
export function policyApp(gateway: string): string {
  return `gateway.${gateway}`;
}

export class PolicyStore {
  readonly store: ConfigStore;

  constructor(options: PolicyStoreOptions) {
    this.store = openStore({ ...options, env: options.env ?? process.env.PROTOMESH_ENV ?? "default", app: policyApp(options.gateway ?? "default"), schema: POLICY_SCHEMA });
  }

  /** The policy in force and its version (undefined when none was written). */
  async current(): Promise<{ version: number; policy: GatewayPolicy } | undefined> {
    const rec = await this.store.current();
    return rec && { version: rec.version, policy: validatePolicy(rec.value) };
  }

  /** Validates and writes a new version. */
  async write(policy: unknown, options: { comment?: string; expectVersion?: number } = {}): Promise<VersionRecord> {
    validatePolicy(policy);
    return this.store.write(policy, options);
  }

  async history(limit?: number): Promise<VersionRecord[]> {
    return this.store.history({ limit });
  }

  /** Makes version `version` current again (as a new version, so history keeps the rollback). */
  async rollback(version: number, comment?: string): Promise<VersionRecord> {
    const target = await this.store.get(version);
    validatePolicy(target.value);
    return this.store.rollback(version, { comment });
  }

  /**
   * Follows the policy: `apply` hears the version in force and every change.
   * A version that does not validate is logged and skipped; the last good
   * one stays in force.
   */
  async follow(apply: (policy: GatewayPolicy, version: number) => void, logger: Logger): Promise<{ stop(): Promise<void> }> {
    return this.store.follow({}, (record) => {
      const issues = checkPolicy(record.value);
      if (issues.length > 0) {
        logger.error("gateway policy version rejected; keeping the previous one", { version: record.version, issues });
        return;
      }
      apply(record.value as GatewayPolicy, record.version);
    });
  }

  close(): void {
    this.store.close();
  }
}
