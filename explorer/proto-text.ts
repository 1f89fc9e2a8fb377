import type { DescEnum, DescEnumValue, DescField, DescMessage, DescMethod, DescOneof, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { commentsOf, fieldLabel, fieldTypeName, methodSignature, type Described } from "../runtime/descriptor-info";

/**
 * Descriptors written back as `.proto` source, with their comments: what
 * `protomesh describe` prints. Type names are fully qualified so nothing
 * depends on the reader knowing the package.
 */

const INDENT = "  ";

export function serviceText(service: DescService): string {
  const lines = [...comment(service, ""), `service ${service.name} {`];
  for (const method of service.methods) lines.push(...methodLines(method, INDENT));
  lines.push("}");
  return lines.join("\n");
}

export function methodText(method: DescMethod): string {
  return methodLines(method, "").join("\n");
}

export function messageText(message: DescMessage): string {
  return messageLines(message, "").join("\n");
}

export function enumText(e: DescEnum): string {
  return enumLines(e, "").join("\n");
}

export function fieldText(field: DescField): string {
  return [...comment(field, ""), fieldLine(field)].join("\n");
}

export function enumValueText(value: DescEnumValue): string {
  return [...comment(value, ""), enumValueLine(value)].join("\n");
}

function methodLines(method: DescMethod, indent: string): string[] {
  const options: string[] = [];
  if (method.deprecated) options.push("option deprecated = true;");
  if (method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN) options.push(`option idempotency_level = ${MethodOptions_IdempotencyLevel[method.idempotency]};`);
  const head = `${indent}${methodSignature(method)}`;
  return [
    ...comment(method, indent),
    ...(options.length === 0 ? [`${head};`] : [`${head} {`, ...options.map((o) => `${indent}${INDENT}${o}`), `${indent}}`]),
  ];
}

function messageLines(message: DescMessage, indent: string): string[] {
  const inner = indent + INDENT;
  const lines = [...comment(message, indent), `${indent}message ${message.name} {`];
  for (const nested of message.nestedMessages) {
    if (nested.proto.options?.mapEntry) continue;
    lines.push(...messageLines(nested, inner));
  }
  for (const e of message.nestedEnums) lines.push(...enumLines(e, inner));
  const printed = new Set<DescOneof>();
  for (const field of message.fields) {
    const oneof = field.oneof;
    if (!oneof) {
      lines.push(...comment(field, inner), inner + fieldLine(field));
    } else if (!printed.has(oneof)) {
      printed.add(oneof);
      lines.push(...comment(oneof, inner), `${inner}oneof ${oneof.name} {`);
      for (const member of oneof.fields) lines.push(...comment(member, inner + INDENT), inner + INDENT + fieldLine(member));
      lines.push(`${inner}}`);
    }
  }
  lines.push(`${indent}}`);
  return lines;
}

function enumLines(e: DescEnum, indent: string): string[] {
  const lines = [...comment(e, indent), `${indent}enum ${e.name} {`];
  for (const value of e.values) lines.push(...comment(value, indent + INDENT), indent + INDENT + enumValueLine(value));
  lines.push(`${indent}}`);
  return lines;
}

function fieldLine(field: DescField): string {
  const label = fieldLabel(field);
  const options = field.deprecated ? " [deprecated = true]" : "";
  return `${label ? `${label} ` : ""}${fieldTypeName(field)} ${field.name} = ${field.number}${options};`;
}

function enumValueLine(value: DescEnumValue): string {
  return `${value.name} = ${value.number}${value.deprecated ? " [deprecated = true]" : ""};`;
}

function comment(desc: Described, indent: string): string[] {
  const { leading } = commentsOf(desc);
  return leading === "" ? [] : leading.split("\n").map((l) => `${indent}//${l === "" ? "" : ` ${l}`}`);
}
