import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  FieldDescriptorProto_Type as Type,
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  FieldDescriptorProtoSchema,
  FileDescriptorProto,
  ServiceDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { protobuf, protobufReflect, protobufWkt } from "./protobuf-runtime";

/**
 * A small vocabulary for writing `FileDescriptorProto`s by hand, for the few
 * framework protos the runtime serves itself (health, reflection). Writing them
 * here keeps the runtime free of generated code and of `.proto` files read at
 * run time; the descriptors are what a client sees through reflection.
 */

type Scalar = "string" | "bytes" | "int32" | "int64" | "uint32" | "bool";

function scalarType(scalar: Scalar): Type {
  const Type = protobufWkt().FieldDescriptorProto_Type;
  const types: Record<Scalar, Type> = { string: Type.STRING, bytes: Type.BYTES, int32: Type.INT32, int64: Type.INT64, uint32: Type.UINT32, bool: Type.BOOL };
  return types[scalar];
}

/** A field's type: a scalar, or a fully-qualified message or enum name (leading dot). */
export type FieldType = Scalar | { message: string } | { enum: string };

/** One field. `oneof` is the index into the message's `oneofs`. */
export interface FieldSpec {
  readonly name: string;
  readonly number: number;
  readonly type: FieldType;
  readonly repeated?: boolean;
  readonly oneof?: number;
}

export interface MessageSpec {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  readonly oneofs?: readonly string[];
  readonly enums?: readonly EnumSpec[];
  readonly messages?: readonly MessageSpec[];
}

/** An enum; values are numbered from 0 in the order given. */
export interface EnumSpec {
  readonly name: string;
  readonly values: readonly string[];
}

export interface MethodSpec {
  readonly name: string;
  /** Fully-qualified, leading dot. */
  readonly input: string;
  readonly output: string;
  readonly clientStreaming?: boolean;
  readonly serverStreaming?: boolean;
}

export interface ServiceSpec {
  readonly name: string;
  readonly methods: readonly MethodSpec[];
}

export interface FileSpec {
  readonly name: string;
  readonly package: string;
  readonly messages?: readonly MessageSpec[];
  readonly enums?: readonly EnumSpec[];
  readonly services?: readonly ServiceSpec[];
  readonly goPackage?: string;
}

/** Builds a proto3 `FileDescriptorProto` from `spec`. */
export function buildFile(spec: FileSpec): FileDescriptorProto {
  return protobuf().create(protobufWkt().FileDescriptorProtoSchema, {
    name: spec.name,
    package: spec.package,
    syntax: "proto3",
    messageType: (spec.messages ?? []).map(message),
    enumType: (spec.enums ?? []).map(enumType),
    service: (spec.services ?? []).map(service),
    options: spec.goPackage ? { goPackage: spec.goPackage } : undefined,
  });
}

function message(spec: MessageSpec): MessageInitShape<typeof DescriptorProtoSchema> {
  return {
    name: spec.name,
    field: spec.fields.map(field),
    oneofDecl: (spec.oneofs ?? []).map((name) => ({ name })),
    enumType: (spec.enums ?? []).map(enumType),
    nestedType: (spec.messages ?? []).map(message),
  };
}

function field(spec: FieldSpec): MessageInitShape<typeof FieldDescriptorProtoSchema> {
  const t = spec.type;
  const { FieldDescriptorProto_Label: Label, FieldDescriptorProto_Type: Type } = protobufWkt();
  return {
    name: spec.name,
    number: spec.number,
    label: spec.repeated ? Label.REPEATED : Label.OPTIONAL,
    type: typeof t === "string" ? scalarType(t) : "message" in t ? Type.MESSAGE : Type.ENUM,
    typeName: typeof t === "string" ? undefined : "message" in t ? t.message : t.enum,
    jsonName: protobufReflect().protoCamelCase(spec.name),
    oneofIndex: spec.oneof,
  };
}

function enumType(spec: EnumSpec): MessageInitShape<typeof EnumDescriptorProtoSchema> {
  return { name: spec.name, value: spec.values.map((name, number) => ({ name, number })) };
}

function service(spec: ServiceSpec): MessageInitShape<typeof ServiceDescriptorProtoSchema> {
  return {
    name: spec.name,
    method: spec.methods.map((m) => ({
      name: m.name,
      inputType: m.input,
      outputType: m.output,
      // Left unset rather than false, as protoc writes them.
      clientStreaming: m.clientStreaming === true ? true : undefined,
      serverStreaming: m.serverStreaming === true ? true : undefined,
    })),
  };
}
