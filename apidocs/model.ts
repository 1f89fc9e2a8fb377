import type { DescEnum, DescField, DescFile, DescMessage, DescMethod, DescService, FileRegistry, JsonValue } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { commentsOf, fieldLabel, fieldTypeName, fieldTypeRef, methodKindLabel } from "../runtime/descriptor-info";
import { jsonTemplate } from "../explorer/json-template";

/**
 * What the API docs say, independent of their format: every service, method,
 * message, field and enum of the project's own files (imports such as the
 * well-known types are referred to, not documented). Files come sorted by
 * name; within a file, declarations keep their source order, nested ones
 * right after their parent. The same input always gives the same model.
 */
export interface DocModel {
  readonly files: readonly DocFile[];
}

export interface DocFile {
  readonly name: string;
  readonly package: string;
  /** The comment above the `package` line. */
  readonly comment: string;
  readonly services: readonly DocService[];
  readonly messages: readonly DocMessage[];
  readonly enums: readonly DocEnum[];
}

export interface DocService {
  readonly fullName: string;
  readonly name: string;
  readonly comment: string;
  readonly deprecated: boolean;
  readonly methods: readonly DocMethod[];
}

export interface DocMethod {
  readonly name: string;
  readonly fullName: string;
  /** Wire path, `/package.Service/Method`. */
  readonly path: string;
  /** `unary`, `server streaming`, `client streaming`, `bidirectional streaming`. */
  readonly kind: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly request: DocTypeRef;
  readonly response: DocTypeRef;
  readonly comment: string;
  readonly deprecated: boolean;
  /** `NO_SIDE_EFFECTS` or `IDEMPOTENT` when declared. */
  readonly idempotency: string | undefined;
  /** A JSON request to start from. */
  readonly template: JsonValue;
}

/** A type mentioned somewhere; `documented` when it has its own section to link to. */
export interface DocTypeRef {
  readonly name: string;
  readonly documented: boolean;
}

export interface DocMessage {
  readonly fullName: string;
  /** Name within the file's package (`Item.Node`). */
  readonly name: string;
  readonly comment: string;
  readonly deprecated: boolean;
  readonly fields: readonly DocField[];
  readonly oneofs: readonly { readonly name: string; readonly fields: readonly string[]; readonly comment: string }[];
}

export interface DocField {
  readonly name: string;
  readonly jsonName: string;
  readonly number: number;
  /** `repeated`, `optional`, `required` or "". */
  readonly label: string;
  /** As written in the source: `string`, `map<string, int64>`, `shop.v1.Money`. */
  readonly type: string;
  /** The message or enum the field refers to, if any. */
  readonly ref: DocTypeRef | undefined;
  /** The oneof the field belongs to. */
  readonly oneof: string | undefined;
  readonly comment: string;
  readonly deprecated: boolean;
}

export interface DocEnum {
  readonly fullName: string;
  readonly name: string;
  readonly comment: string;
  readonly deprecated: boolean;
  readonly values: readonly { readonly name: string; readonly number: number; readonly comment: string; readonly deprecated: boolean }[];
}

/** Builds the model of `projectFiles` (names like `shop/v1/orders.proto`) from a registry that also holds their imports. */
export function buildModel(registry: FileRegistry, projectFiles: readonly string[]): DocModel {
  const wanted = new Set(projectFiles);
  const files = [...registry.files].filter((f) => wanted.has(f.proto.name)).sort((a, b) => compare(a.proto.name, b.proto.name));
  const documented = new Set<string>();
  for (const file of files) {
    for (const m of allMessages(file)) documented.add(m.typeName);
    for (const e of allEnums(file)) documented.add(e.typeName);
  }
  const ref = (name: string): DocTypeRef => ({ name, documented: documented.has(name) });
  return { files: files.map((f) => docFile(f, ref)) };
}

function docFile(file: DescFile, ref: (name: string) => DocTypeRef): DocFile {
  return {
    name: file.proto.name,
    package: file.proto.package,
    comment: packageComment(file),
    services: file.services.map((s) => docService(s, ref)),
    messages: allMessages(file).map((m) => docMessage(m, ref)),
    enums: allEnums(file).map(docEnum),
  };
}

function docService(service: DescService, ref: (name: string) => DocTypeRef): DocService {
  return {
    fullName: service.typeName,
    name: service.name,
    comment: commentsOf(service).leading,
    deprecated: service.deprecated,
    methods: service.methods.map((m) => docMethod(m, ref)),
  };
}

function docMethod(method: DescMethod, ref: (name: string) => DocTypeRef): DocMethod {
  return {
    name: method.name,
    fullName: `${method.parent.typeName}.${method.name}`,
    path: `/${method.parent.typeName}/${method.name}`,
    kind: methodKindLabel(method),
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    request: ref(method.input.typeName),
    response: ref(method.output.typeName),
    comment: commentsOf(method).leading,
    deprecated: method.deprecated,
    idempotency: method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN ? undefined : MethodOptions_IdempotencyLevel[method.idempotency],
    template: jsonTemplate(method.input),
  };
}

/** A type's name inside its package (`Order.Item` for `acme.shop.v1.Order.Item`). */
function nameInPackage(desc: DescMessage | DescEnum): string {
  const pkg = desc.file.proto.package;
  return pkg === "" ? desc.typeName : desc.typeName.slice(pkg.length + 1);
}

/** Leading and trailing comments, one after the other. */
function fullComment(desc: DescField | DescEnum["values"][number]): string {
  const { leading, trailing } = commentsOf(desc);
  return [leading, trailing].filter(Boolean).join("\n");
}

function docMessage(message: DescMessage, ref: (name: string) => DocTypeRef): DocMessage {
  return {
    fullName: message.typeName,
    name: nameInPackage(message),
    comment: commentsOf(message).leading,
    deprecated: message.deprecated,
    fields: message.fields.map((f) => docField(f, ref)),
    oneofs: message.oneofs.map((o) => ({ name: o.name, fields: o.fields.map((f) => f.name), comment: commentsOf(o).leading })),
  };
}

function docField(field: DescField, ref: (name: string) => DocTypeRef): DocField {
  const target = fieldTypeRef(field);
  return {
    name: field.name,
    jsonName: field.jsonName,
    number: field.number,
    label: fieldLabel(field),
    type: fieldTypeName(field),
    ref: target ? ref(target.typeName) : undefined,
    oneof: field.oneof?.name,
    comment: fullComment(field),
    deprecated: field.deprecated,
  };
}

function docEnum(e: DescEnum): DocEnum {
  return {
    fullName: e.typeName,
    name: nameInPackage(e),
    comment: commentsOf(e).leading,
    deprecated: e.deprecated,
    values: e.values.map((v) => ({ name: v.name, number: v.number, comment: fullComment(v), deprecated: v.deprecated })),
  };
}

/** Messages of a file in source order, each followed by its nested ones; map entries are left out. */
function allMessages(file: DescFile): DescMessage[] {
  const out: DescMessage[] = [];
  const visit = (m: DescMessage) => {
    if (m.proto.options?.mapEntry) return;
    out.push(m);
    m.nestedMessages.forEach(visit);
  };
  file.messages.forEach(visit);
  return out;
}

/** Enums of a file: top-level ones, then those nested in messages, in source order. */
function allEnums(file: DescFile): DescEnum[] {
  return [...file.enums, ...allMessages(file).flatMap((m) => m.nestedEnums)];
}

/** The comment above the `package` statement (source path [2]). */
function packageComment(file: DescFile): string {
  const loc = file.proto.sourceCodeInfo?.location.find((l) => l.path.length === 1 && l.path[0] === 2);
  const text = loc?.leadingComments ?? "";
  return text
    .split("\n")
    .map((l) => (l.startsWith(" ") ? l.slice(1) : l).trimEnd())
    .join("\n")
    .trim();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
