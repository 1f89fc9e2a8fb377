/**
 * The config center: an application's configuration as a proto message, kept
 * per environment in etcd, validated, versioned, hot-reloaded.
 *
 * ```ts
 * import * as config from "protomesh/config";
 * const GreeterConfigDefinition = config.defineConfig(GreeterConfig, "examples.greeter.v1.GreeterConfig", GreeterConfigServiceDefinition);
 * const cfg = await config.load(GreeterConfigDefinition, { app: "greeter", env: "prod" });
 * cfg.watch((next, prev) => …);
 * ```
 *
 * End-user API first (loading, writing); the extension API (schemas, checks,
 * file formats, key layout) follows.
 */
export { load, type LoadOptions, type LiveConfig, type ConfigChange, type ConfigSource } from "./load";
export { defineConfig, type ConfigDefinition, type ConfigMessage, type DescriptorSource } from "./definition";
export { openStore, ConfigStore, type StoreOptions, type WriteOptions, type StoreProblem } from "./store";
export { ConfigError, ConfigValidationError, ConflictError } from "./errors";
export type { VersionRecord, VersionKind, GrayRule, JsonObject } from "./records";
export type { Labels } from "./labels";

// Extension API
export { schemaFromDescriptors, schemaFromDescriptorSet, normalizeConfig, decodeConfig, encodeConfig, type ConfigSchema, type Normalized } from "./definition";
export { checkJson, type ConfigIssue, type CheckOptions, type CheckReport } from "./validate";
export { parseLabels, matchesLabels, formatLabels } from "./labels";
export { checkConfigText, formatOf, type ConfigFormat, type FileIssue, type FileCheck } from "./file-formats";
export { parseProperties, propertiesToTree, type PropertyEntry } from "./properties";
export { diffConfig, formatDiff, type ConfigDifference } from "./diff";
export { configPrefix, configKeys, classifyKey, type ConfigKeys, type KeyKind } from "./keys";
export { MAX_VALUE_BYTES, MAX_RECORD_BYTES } from "./records";
