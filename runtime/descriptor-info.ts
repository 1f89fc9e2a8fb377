import { ScalarType, type DescEnum, type DescEnumValue, type DescExtension, type DescField, type DescMessage, type DescMethod, type DescOneof, type DescService } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, type FileDescriptorProto, type SourceCodeInfo_Location } from "@bufbuild/protobuf/wkt";

/**
 * Reading descriptors the way a person reads a `.proto` file: the comments
 * written above or beside a declaration, and a field's type as it is spelled
 * in the source. Shared by `protomesh describe` and `protomesh docs`.
 */

export type Described = DescMessage | DescEnum | DescEnumValue | DescField | DescOneof | DescService | DescMethod | DescExtension;

export interface Comments {
  /** The comment above the declaration, trimmed; "" when none. */
  readonly leading: string;
  /** The comment after it on the same line, trimmed; "" when none. */
  readonly trailing: string;
}

const byFile = new WeakMap<FileDescriptorProto, Map<string, SourceCodeInfo_Location>>();

/** The comments of a declaration, from the file's source code info (empty when the file carries none). */
export function commentsOf(desc: Described): Comments {
  const file = fileOf(desc).proto;
  let locations = byFile.get(file);
  if (!locations) {
    locations = new Map((file.sourceCodeInfo?.location ?? []).map((l) => [l.path.join(","), l]));
    byFile.set(file, locations);
  }
  const loc = locations.get(sourcePath(desc).join(","));
  return { leading: tidy(loc?.leadingComments ?? ""), trailing: tidy(loc?.trailingComments ?? "") };
}

/** The type of a field as written in a `.proto` file: `string`, `map<string, int64>`, `shop.v1.Money`. */
export function fieldTypeName(field: DescField | DescExtension): string {
  switch (field.fieldKind) {
    case "scalar":
      return scalarName(field.scalar);
    case "enum":
      return field.enum.typeName;
    case "message":
      return field.message.typeName;
    case "list":
      return field.listKind === "scalar" ? scalarName(field.scalar) : field.listKind === "enum" ? field.enum.typeName : field.message.typeName;
    case "map": {
      const value = field.mapKind === "scalar" ? scalarName(field.scalar) : field.mapKind === "enum" ? field.enum.typeName : field.message.typeName;
      return `map<${scalarName(field.mapKey)}, ${value}>`;
    }
  }
}

/** `repeated`, `optional` (explicit presence in proto3, or proto2 optional), `required`, or "". */
export function fieldLabel(field: DescField | DescExtension): string {
  if (field.fieldKind === "list") return "repeated";
  if (field.fieldKind === "map") return "";
  if (field.proto.proto3Optional) return "optional";
  const file = field.kind === "extension" ? field.file : field.parent.file;
  // Labels as the source spells them; proto3 and editions write none for singular fields.
  if (file.proto.syntax === "proto2" || file.proto.syntax === "") {
    if (field.proto.label === FieldDescriptorProto_Label.REQUIRED) return "required";
    if (field.oneof === undefined) return "optional";
  }
  return "";
}

/** The message or enum a field refers to, if any (for links). */
export function fieldTypeRef(field: DescField | DescExtension): DescMessage | DescEnum | undefined {
  switch (field.fieldKind) {
    case "enum":
    case "message":
      return field.fieldKind === "enum" ? field.enum : field.message;
    case "list":
      return field.listKind === "enum" ? field.enum : field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "enum" ? field.enum : field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

/** How a method streams, in words: `unary`, `server streaming`, `client streaming`, `bidirectional streaming`. */
export function methodKindLabel(method: DescMethod): string {
  switch (method.methodKind) {
    case "unary":
      return "unary";
    case "server_streaming":
      return "server streaming";
    case "client_streaming":
      return "client streaming";
    case "bidi_streaming":
      return "bidirectional streaming";
  }
}

/** `rpc Chat(stream examples.greeter.v1.HelloRequest) returns (stream examples.greeter.v1.HelloReply)`. */
export function methodSignature(method: DescMethod): string {
  const input = `${method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming" ? "stream " : ""}${method.input.typeName}`;
  const output = `${method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming" ? "stream " : ""}${method.output.typeName}`;
  return `rpc ${method.name}(${input}) returns (${output})`;
}

function scalarName(type: ScalarType): string {
  return ScalarType[type].toLowerCase();
}

function fileOf(desc: Described) {
  switch (desc.kind) {
    case "enum_value":
      return desc.parent.file;
    case "field":
    case "oneof":
      return desc.parent.file;
    case "rpc":
      return desc.parent.file;
    default:
      return desc.file;
  }
}

/** The `SourceCodeInfo` path of a declaration (field numbers of FileDescriptorProto and friends). */
function sourcePath(desc: Described): number[] {
  switch (desc.kind) {
    case "message":
      return desc.parent
        ? [...sourcePath(desc.parent), 3, desc.parent.proto.nestedType.indexOf(desc.proto)]
        : [4, desc.file.proto.messageType.indexOf(desc.proto)];
    case "enum":
      return desc.parent ? [...sourcePath(desc.parent), 4, desc.parent.proto.enumType.indexOf(desc.proto)] : [5, desc.file.proto.enumType.indexOf(desc.proto)];
    case "enum_value":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.value.indexOf(desc.proto)];
    case "field":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case "oneof":
      return [...sourcePath(desc.parent), 8, desc.parent.proto.oneofDecl.indexOf(desc.proto)];
    case "service":
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.method.indexOf(desc.proto)];
    case "extension":
      return desc.parent ? [...sourcePath(desc.parent), 6, desc.parent.proto.extension.indexOf(desc.proto)] : [7, desc.file.proto.extension.indexOf(desc.proto)];
  }
}

/** Comment text without the single space protoc keeps after `//`, and without surrounding blank lines. */
function tidy(text: string): string {
  const lines = text.replace(/\n$/, "").split("\n").map((l) => (l.startsWith(" ") ? l.slice(1) : l).trimEnd());
  while (lines.length > 0 && lines[0] === "") lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}
