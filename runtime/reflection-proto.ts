import type { DescMessage } from "@bufbuild/protobuf";
import { protobuf } from "./protobuf-runtime";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { buildFile } from "./proto-builder";

/**
 * `grpc/reflection/{v1,v1alpha}/reflection.proto` as descriptors, and the
 * message shapes the server and the explorer's client exchange. Both versions
 * are the same protocol under two package names: grpcurl up to 1.8 and many
 * other tools speak only v1alpha.
 */

/** The reflection versions protomesh serves, newest first. */
export const REFLECTION_VERSIONS = ["v1", "v1alpha"] as const;
export type ReflectionVersion = (typeof REFLECTION_VERSIONS)[number];

/** `grpc.reflection.v1.ServerReflection`, … */
export function reflectionServiceName(version: ReflectionVersion): string {
  return `grpc.reflection.${version}.ServerReflection`;
}

/** The wire path of the one reflection method. */
export function reflectionMethodPath(version: ReflectionVersion): string {
  return `/${reflectionServiceName(version)}/ServerReflectionInfo`;
}

const files = new Map<ReflectionVersion, FileDescriptorProto>();

/** The reflection proto of `version`, built once. */
export function reflectionFile(version: ReflectionVersion): FileDescriptorProto {
  let file = files.get(version);
  if (!file) {
    file = build(version);
    files.set(version, file);
  }
  return file;
}

function build(version: ReflectionVersion): FileDescriptorProto {
  const pkg = `grpc.reflection.${version}`;
  const t = (name: string) => ({ message: `.${pkg}.${name}` });
  return buildFile({
    name: `grpc/reflection/${version}/reflection.proto`,
    package: pkg,
    goPackage: version === "v1" ? "google.golang.org/grpc/reflection/grpc_reflection_v1" : undefined,
    messages: [
      {
        name: "ServerReflectionRequest",
        oneofs: ["message_request"],
        fields: [
          { name: "host", number: 1, type: "string" },
          { name: "file_by_filename", number: 3, type: "string", oneof: 0 },
          { name: "file_containing_symbol", number: 4, type: "string", oneof: 0 },
          { name: "file_containing_extension", number: 5, type: t("ExtensionRequest"), oneof: 0 },
          { name: "all_extension_numbers_of_type", number: 6, type: "string", oneof: 0 },
          { name: "list_services", number: 7, type: "string", oneof: 0 },
        ],
      },
      {
        name: "ExtensionRequest",
        fields: [
          { name: "containing_type", number: 1, type: "string" },
          { name: "extension_number", number: 2, type: "int32" },
        ],
      },
      {
        name: "ServerReflectionResponse",
        oneofs: ["message_response"],
        fields: [
          { name: "valid_host", number: 1, type: "string" },
          { name: "original_request", number: 2, type: t("ServerReflectionRequest") },
          { name: "file_descriptor_response", number: 4, type: t("FileDescriptorResponse"), oneof: 0 },
          { name: "all_extension_numbers_response", number: 5, type: t("ExtensionNumberResponse"), oneof: 0 },
          { name: "list_services_response", number: 6, type: t("ListServiceResponse"), oneof: 0 },
          { name: "error_response", number: 7, type: t("ErrorResponse"), oneof: 0 },
        ],
      },
      { name: "FileDescriptorResponse", fields: [{ name: "file_descriptor_proto", number: 1, type: "bytes", repeated: true }] },
      {
        name: "ExtensionNumberResponse",
        fields: [
          { name: "base_type_name", number: 1, type: "string" },
          { name: "extension_number", number: 2, type: "int32", repeated: true },
        ],
      },
      { name: "ListServiceResponse", fields: [{ name: "service", number: 1, type: t("ServiceResponse"), repeated: true }] },
      { name: "ServiceResponse", fields: [{ name: "name", number: 1, type: "string" }] },
      {
        name: "ErrorResponse",
        fields: [
          { name: "error_code", number: 1, type: "int32" },
          { name: "error_message", number: 2, type: "string" },
        ],
      },
    ],
    services: [
      {
        name: "ServerReflection",
        methods: [
          {
            name: "ServerReflectionInfo",
            input: `.${pkg}.ServerReflectionRequest`,
            output: `.${pkg}.ServerReflectionResponse`,
            clientStreaming: true,
            serverStreaming: true,
          },
        ],
      },
    ],
  });
}

/** The request and response message descriptors of `version`. */
export function reflectionMessages(version: ReflectionVersion): { request: DescMessage; response: DescMessage } {
  const registry = protobuf().createFileRegistry(reflectionFile(version), () => undefined);
  const pkg = `grpc.reflection.${version}`;
  return {
    request: registry.getMessage(`${pkg}.ServerReflectionRequest`)!,
    response: registry.getMessage(`${pkg}.ServerReflectionResponse`)!,
  };
}

/** A reflection request as @bufbuild/protobuf decodes it. */
export interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/** A reflection response as @bufbuild/protobuf builds and decodes it. */
export interface ReflectionResponse {
  validHost: string;
  originalRequest?: ReflectionRequest;
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
    | { case: undefined; value?: undefined };
}
