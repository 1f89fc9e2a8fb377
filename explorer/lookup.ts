import type { DescEnum, DescEnumValue, DescExtension, DescField, DescMessage, DescMethod, DescOneof, DescService, Registry } from "@bufbuild/protobuf";
import { RpcError, Status } from "../runtime/errors";

/** Anything a fully-qualified name can denote in a set of proto files. */
export type Symbol = DescService | DescMethod | DescMessage | DescEnum | DescField | DescOneof | DescEnumValue | DescExtension;

/** Finds `name` (a type, or a member of one: method, field, oneof, enum value) in `registry`. */
export function findSymbol(registry: Registry, name: string): Symbol | undefined {
  const fqn = name.replace(/^\./, "");
  const direct = registry.get(fqn);
  if (direct) return direct;
  const dot = fqn.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const scope = fqn.slice(0, dot);
  const member = fqn.slice(dot + 1);
  const parent = registry.get(scope);
  if (parent?.kind === "service") return parent.methods.find((m) => m.name === member);
  if (parent?.kind === "message") return parent.fields.find((f) => f.name === member) ?? parent.oneofs.find((o) => o.name === member) ?? enumValueIn(parent.nestedEnums, member);
  // Enum values are scoped as siblings of their enum: `pkg.COLOR_RED`.
  for (const desc of registry) {
    if (desc.kind === "enum" && desc.typeName.slice(0, desc.typeName.lastIndexOf(".")) === scope) {
      const value = desc.values.find((v) => v.name === member);
      if (value) return value;
    }
  }
  return undefined;
}

function enumValueIn(enums: readonly DescEnum[], name: string): DescEnumValue | undefined {
  for (const e of enums) {
    const value = e.values.find((v) => v.name === name);
    if (value) return value;
  }
  return undefined;
}

/** `pkg.Service/Method`, `/pkg.Service/Method` or `pkg.Service.Method` → its parts. */
export function splitMethodName(name: string): { service: string; method: string } {
  const trimmed = name.replace(/^\//, "");
  const cut = trimmed.includes("/") ? trimmed.lastIndexOf("/") : trimmed.lastIndexOf(".");
  if (cut <= 0 || cut === trimmed.length - 1) throw new RpcError(Status.INVALID_ARGUMENT, `bad method name ${JSON.stringify(name)}: use package.Service/Method`);
  return { service: trimmed.slice(0, cut), method: trimmed.slice(cut + 1) };
}

/** The method `name` names in `registry`; NOT_FOUND says what exists instead. */
export function findMethod(registry: Registry, name: string): DescMethod {
  const { service, method } = splitMethodName(name);
  const svc = registry.getService(service);
  if (!svc) throw new RpcError(Status.NOT_FOUND, `no service ${service}`);
  const found = svc.methods.find((m) => m.name === method) ?? svc.methods.find((m) => m.name.toLowerCase() === method.toLowerCase());
  if (!found) throw new RpcError(Status.NOT_FOUND, `service ${service} has no method ${method} (it has ${svc.methods.map((m) => m.name).join(", ")})`);
  return found;
}
