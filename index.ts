/**
 * protomesh: typed gRPC services that find and balance each other.
 *
 * End-user API first; the extension API (definitions, instance tables) follows.
 */
export { createServer, type Server, type ServerOptions } from "./runtime/server";
export type { Health, SettableStatus, ServingStatus } from "./runtime/health";
export { createClient, closeClient, type ClientOptions, type ClientHandle } from "./runtime/client";
export { buildServiceConfig, hashHeaderOf, type BalancerOption, type ConsistentHashOption, type LeastRequestOption, type P2cOption, type RetryOption } from "./runtime/balancing/service-config";
export { RpcError, Status, codeName, type Code } from "./runtime/errors";
export type { CallContext, CallOptions } from "./runtime/context";
export { chain, type Interceptor, type CallNext, type CallRequest, type CallResponse } from "./runtime/interceptor";
export { getLogger, setLogger, createJsonLogger, fromPino, type Logger, type LogLevel, type LogFields, type JsonLoggerOptions } from "./runtime/logger";
export { enableTracing, isTracingEnabled, tracingInterceptor, type TracingInterceptorOptions } from "./runtime/tracing-interceptor";
export { metricsRegistry, metricsInterceptor, LATENCY_BUCKETS, type MetricsInterceptorOptions } from "./runtime/metrics";
export { serveMetrics, type MetricsEndpoint, type MetricsEndpointOptions } from "./runtime/metrics-endpoint";
export type { ObservabilityOptions, ServerMetricsOption } from "./runtime/observability";
export { Metadata } from "@grpc/grpc-js";

// The etcd registry. Importing protomesh registers the `etcd:///` scheme with grpc-js, so
// `createClient(def, "etcd:///greeter")` and plain grpc-js clients can dial registered services.
import "./registry/etcd/register";
export {
  etcdRegistry,
  RegistrationTimeoutError,
  startEmbeddedEtcd,
  registerEtcdResolver,
  setDefaultDiscovery,
  DISCOVERY_OPTION,
  type EtcdRegistry,
  type EtcdRegistryOptions,
  type EtcdRegistrationHandle,
  type EtcdOptions,
  type EmbeddedEtcd,
} from "./registry";
export type { Registrar, Registration, RegistrationHandle, Discovery, DiscoveryUpdate, TrafficRuleUpdate } from "./registry/registry";

// Extension API: what generated code, registries and LB policies build on.
export { addReflection, type ReflectionSource } from "./runtime/reflection";
export { DescriptorPool } from "./runtime/descriptor-pool";
export { dynamicCall, type DynamicCallOptions } from "./runtime/dynamic-call";
export type {
  ServiceDefinition,
  MethodDefinition,
  MethodKind,
  Idempotency,
  DeepPartial,
  HandlersOf,
  ClientOf,
} from "./runtime/definition";
export { registryMetrics, type RegistryMetrics } from "./runtime/metrics-registry";
export { metadataGetter, metadataSetter } from "./runtime/tracing-interceptor";
export { observeStream, type StreamObserver } from "./runtime/observed-stream";
export { setup as registerConsistentHash, CONSISTENT_HASH_POLICY, DEFAULT_HASH_HEADER } from "./runtime/balancing/lb-consistent-hash";
export { INSTANCES_ATTRIBUTE, instancesFromOptions, type InstanceInfo, type InstanceTable } from "./runtime/balancing/instances";
