/**
 * A config schema: a proto message, known both as a descriptor (to validate
 * proto JSON field by field) and as ts-proto's generated message (to hand the
 * application a typed value). The two meet in the binary encoding, which
 * protobuf-es and ts-proto agree on for every type, well-known types included.
 */
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { DeepPartial } from "../runtime/definition";
import { ConfigError, ConfigValidationError } from "./errors";
import type { JsonObject } from "./records";
import { checkJson, type CheckOptions, type ConfigIssue } from "./validate";

/** A message descriptor and the registry it resolves in: enough to validate and normalize proto JSON. */
export interface ConfigSchema {
  /** Full proto name, without a leading dot (`examples.greeter.v1.GreeterConfig`). */
  readonly typeName: string;
  readonly desc: DescMessage;
  readonly registry: Registry;
}

/** What config needs from a ts-proto message object (`GreeterConfig` in the generated module). */
export interface ConfigMessage<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: DeepPartial<T>): T;
}

/** A typed config schema, what `load` takes. Make one with {@link defineConfig}. */
export interface ConfigDefinition<T> extends ConfigSchema {
  readonly message: ConfigMessage<T>;
}

/** Anything carrying protomesh's embedded descriptors, such as a generated `…Definition`. */
export interface DescriptorSource {
  /** Base64 `FileDescriptorProto`s, dependencies first. */
  readonly descriptors: readonly string[];
}

/**
 * Binds ts-proto's message for a config to its descriptor. The descriptors
 * come from the `…Definition` that `protomesh gen` emits for any service in
 * the same file (or in a file importing it).
 *
 * @example
 *   const GreeterConfigDefinition = defineConfig(GreeterConfig, "examples.greeter.v1.GreeterConfig", GreeterConfigServiceDefinition);
 */
export function defineConfig<T>(message: ConfigMessage<T>, typeName: string, source: DescriptorSource): ConfigDefinition<T> {
  return { ...schemaFromDescriptors(typeName, source.descriptors), message };
}

/** A schema from base64 or binary `FileDescriptorProto`s that include every dependency. */
export function schemaFromDescriptors(typeName: string, descriptors: readonly (string | Uint8Array)[]): ConfigSchema {
  const files: FileDescriptorProto[] = [];
  const names = new Set<string>();
  for (const d of descriptors) {
    const file = fromBinary(FileDescriptorProtoSchema, typeof d === "string" ? Buffer.from(d, "base64") : d);
    if (names.has(file.name)) continue;
    names.add(file.name);
    files.push(file);
  }
  return schemaFromFiles(typeName, files);
}

/** A schema from a serialized `FileDescriptorSet` (such as `buf build --as-file-descriptor-set -o set.binpb`). */
export function schemaFromDescriptorSet(typeName: string, bytes: Uint8Array): ConfigSchema {
  return schemaFromFiles(typeName, fromBinary(FileDescriptorSetSchema, bytes).file);
}

function schemaFromFiles(typeName: string, files: FileDescriptorProto[]): ConfigSchema {
  const name = typeName.replace(/^\./, "");
  let registry: Registry;
  try {
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  } catch (err) {
    throw new ConfigError(`cannot read the config descriptors: ${(err as Error).message}`);
  }
  const desc = registry.getMessage(name);
  if (!desc) {
    const known = [...registry].filter((t) => t.kind === "message").map((t) => t.typeName);
    throw new ConfigError(`message ${name} is not in the descriptors (they hold ${known.slice(0, 8).join(", ")}${known.length > 8 ? ", …" : ""})`);
  }
  return { typeName: name, desc, registry };
}

export type Normalized = { ok: true; json: JsonObject; unknown: ConfigIssue[] } | { ok: false; issues: ConfigIssue[] };

/**
 * Validates proto JSON against `schema` and returns its canonical form
 * (JSON field names, defaults left out), which is what the center stores.
 */
export function normalizeConfig(schema: ConfigSchema, json: unknown, options: CheckOptions = {}): Normalized {
  const report = checkJson(schema.desc, json, options);
  if (report.issues.length > 0) return { ok: false, issues: report.issues };
  try {
    const message = fromJson(schema.desc, json as JsonValue, { registry: schema.registry, ignoreUnknownFields: options.unknownFields === "ignore" });
    return { ok: true, json: toJson(schema.desc, message, { registry: schema.registry }) as JsonObject, unknown: report.unknown };
  } catch (err) {
    // The field-by-field check mirrors protobuf's parser; this catches what it does not model.
    return { ok: false, issues: [{ path: "", message: (err as Error).message }] };
  }
}

/** Decodes canonical JSON (from {@link normalizeConfig}) into the typed value. */
export function decodeConfig<T>(definition: ConfigDefinition<T>, json: JsonObject): T {
  const message = fromJson(definition.desc, json as JsonValue, { registry: definition.registry, ignoreUnknownFields: true });
  return definition.message.decode(toBinary(definition.desc, message));
}

/** Canonical JSON of a typed (possibly partial) value; throws `ConfigValidationError` if it does not encode. */
export function encodeConfig<T>(definition: ConfigDefinition<T>, value: DeepPartial<T>): JsonObject {
  let bytes: Uint8Array;
  try {
    bytes = definition.message.encode(definition.message.fromPartial(value)).finish();
  } catch (err) {
    throw new ConfigValidationError([{ path: "", message: (err as Error).message }]);
  }
  const message = fromBinary(definition.desc, bytes);
  return toJson(definition.desc, message, { registry: definition.registry }) as JsonObject;
}
