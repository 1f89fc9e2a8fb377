/**
 * protomesh: typed gRPC services that find and balance each other.
 *
 * End-user API first; the extension API (definitions, instance tables) follows.
 */
export { createServer, type Server, type ServerOptions } from "./runtime/server";
export { createClient, closeClient, type ClientOptions, type ClientHandle } from "./runtime/client";
export { RpcError, Status, codeName, type Code } from "./runtime/errors";
export type { CallContext, CallOptions } from "./runtime/context";
export { chain, type Interceptor, type CallNext, type CallRequest, type CallResponse } from "./runtime/interceptor";
export { getLogger, setLogger, createJsonLogger, type Logger, type LogLevel, type LogFields } from "./runtime/logger";
export { Metadata } from "@grpc/grpc-js";

// Extension API: what generated code, registries and LB policies build on.
export type {
  ServiceDefinition,
  MethodDefinition,
  MethodKind,
  Idempotency,
  DeepPartial,
  HandlersOf,
  ClientOf,
} from "./runtime/definition";
export { INSTANCES_ATTRIBUTE, instancesFromOptions, type InstanceInfo, type InstanceTable } from "./runtime/instances";
