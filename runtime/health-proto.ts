import type { DescMessage } from "@bufbuild/protobuf";
import { protobuf } from "./protobuf-runtime";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { buildFile } from "./proto-builder";

/** `grpc/health/v1/health.proto` as a descriptor, with its message types. */

/** The health service's full name. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";

/** The values of `HealthCheckResponse.ServingStatus`, by number. */
export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;
export type ServingStatus = (typeof SERVING_STATUS)[number];

let file: FileDescriptorProto | undefined;

/** The health proto, built once. */
export function healthFile(): FileDescriptorProto {
  file ??= buildFile({
    name: "grpc/health/v1/health.proto",
    package: "grpc.health.v1",
    goPackage: "google.golang.org/grpc/health/grpc_health_v1",
    messages: [
      { name: "HealthCheckRequest", fields: [{ name: "service", number: 1, type: "string" }] },
      {
        name: "HealthCheckResponse",
        enums: [{ name: "ServingStatus", values: SERVING_STATUS }],
        fields: [{ name: "status", number: 1, type: { enum: ".grpc.health.v1.HealthCheckResponse.ServingStatus" } }],
      },
    ],
    services: [
      {
        name: "Health",
        methods: [
          { name: "Check", input: ".grpc.health.v1.HealthCheckRequest", output: ".grpc.health.v1.HealthCheckResponse" },
          { name: "Watch", input: ".grpc.health.v1.HealthCheckRequest", output: ".grpc.health.v1.HealthCheckResponse", serverStreaming: true },
        ],
      },
    ],
  });
  return file;
}

let messages: { request: DescMessage; response: DescMessage } | undefined;

/** `HealthCheckRequest` and `HealthCheckResponse`. */
export function healthMessages(): { request: DescMessage; response: DescMessage } {
  if (!messages) {
    const registry = protobuf().createFileRegistry(healthFile(), () => undefined);
    messages = {
      request: registry.getMessage("grpc.health.v1.HealthCheckRequest")!,
      response: registry.getMessage("grpc.health.v1.HealthCheckResponse")!,
    };
  }
  return messages;
}
