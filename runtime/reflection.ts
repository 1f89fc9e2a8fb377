import * as grpc from "@grpc/grpc-js";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { ServiceDefinition } from "./definition";
import { DescriptorPool } from "./descriptor-pool";
import { Status } from "./errors";
import { messageCodec } from "./message-codec";
import { healthFile, HEALTH_SERVICE } from "./health-proto";
import {
  REFLECTION_VERSIONS,
  reflectionFile,
  reflectionMessages,
  reflectionMethodPath,
  reflectionServiceName,
  type ReflectionRequest,
  type ReflectionResponse,
  type ReflectionVersion,
} from "./reflection-proto";

/**
 * gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), answered from
 * the file descriptors embedded in each service definition. This is what lets
 * grpcurl, Postman or `protomesh ls|describe|call` work without `.proto` files.
 */

/** What a reflection service describes. Read on the first request, when the set of services is final. */
export interface ReflectionSource {
  /** Services whose files are served and whose names `list` reports. */
  readonly definitions: () => readonly ServiceDefinition[];
  /** Further services served by the same server, with the files declaring them (health, for one). */
  readonly extra?: () => readonly { readonly service: string; readonly file: FileDescriptorProto }[];
}

/**
 * Adds the reflection services to a grpc-js server: both versions, unless
 * `versions` names fewer.
 *
 * @example
 *   addReflection(server.grpc, { definitions: () => [GreeterDefinition] });
 */
export function addReflection(server: grpc.Server, source: ReflectionSource, versions: readonly ReflectionVersion[] = REFLECTION_VERSIONS): void {
  let index: ReflectionIndex | undefined;
  const lookup = () => (index ??= buildIndex(source, versions));
  for (const version of versions) {
    server.addService({ ServerReflectionInfo: reflectionMethod(version) }, {
      ServerReflectionInfo: (call: grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>) => serve(call, lookup),
    });
  }
}

const methods = new Map<ReflectionVersion, grpc.MethodDefinition<ReflectionRequest, ReflectionResponse>>();

/** The grpc-js definition of `ServerReflectionInfo` in `version`; clients use it too. */
export function reflectionMethod(version: ReflectionVersion): grpc.MethodDefinition<ReflectionRequest, ReflectionResponse> {
  let method = methods.get(version);
  if (!method) methods.set(version, (method = buildMethod(version)));
  return method;
}

function buildMethod(version: ReflectionVersion): grpc.MethodDefinition<ReflectionRequest, ReflectionResponse> {
  const messages = reflectionMessages(version);
  const request = messageCodec<ReflectionRequest>(messages.request);
  const response = messageCodec<ReflectionResponse>(messages.response);
  return {
    path: reflectionMethodPath(version),
    requestStream: true,
    responseStream: true,
    requestSerialize: request.serialize,
    requestDeserialize: request.deserialize,
    responseSerialize: response.serialize,
    responseDeserialize: response.deserialize,
    originalName: "serverReflectionInfo",
  };
}

interface ReflectionIndex {
  readonly pool: DescriptorPool;
  readonly services: readonly string[];
}

function buildIndex(source: ReflectionSource, versions: readonly ReflectionVersion[]): ReflectionIndex {
  const definitions = source.definitions();
  const pool = DescriptorPool.fromDefinitions(definitions);
  const services = new Set(definitions.map((d) => d.typeName));
  for (const { service, file } of source.extra?.() ?? []) {
    pool.add(file);
    services.add(service);
  }
  for (const version of versions) {
    pool.add(reflectionFile(version));
    services.add(reflectionServiceName(version));
  }
  return { pool, services: [...services].sort() };
}

/** One reflection stream: each request gets one response, in order. */
function serve(call: grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>, lookup: () => ReflectionIndex): void {
  // Files already sent on this stream are not repeated as dependencies (clients cache them).
  const sent = new Set<string>();
  call.on("data", (request: ReflectionRequest) => {
    let answer: ReflectionResponse["messageResponse"];
    try {
      answer = respond(request, lookup(), sent);
    } catch (err) {
      answer = failure(Status.INTERNAL, `reflection failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    call.write({ validHost: request.host, originalRequest: request, messageResponse: answer });
  });
  call.on("end", () => call.end());
  // A client that goes away mid-stream is not an error worth reporting.
  call.on("error", () => undefined);
}

function respond(request: ReflectionRequest, index: ReflectionIndex, sent: Set<string>): ReflectionResponse["messageResponse"] {
  const { pool } = index;
  const files = (file: string | undefined, what: string): ReflectionResponse["messageResponse"] => {
    if (file === undefined) return failure(Status.NOT_FOUND, what);
    const names = pool.withDependencies(file, sent);
    for (const name of names) sent.add(name);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: names.map((n) => pool.bytes(n)!) } };
  };
  const req = request.messageRequest;
  switch (req.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(pool.has(req.value) ? req.value : undefined, `file not found: ${req.value}`);
    case "fileContainingSymbol":
      return files(pool.fileContainingSymbol(req.value), `symbol not found: ${req.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = req.value;
      return files(pool.fileContainingExtension(containingType, extensionNumber), `extension ${extensionNumber} of ${containingType} not found`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = pool.extensionNumbers(req.value);
      if (numbers === undefined) return failure(Status.NOT_FOUND, `message type not found: ${req.value}`);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value.replace(/^\./, ""), extensionNumber: numbers } };
    }
    default:
      return failure(Status.INVALID_ARGUMENT, "empty reflection request");
  }
}

function failure(code: Status, message: string): ReflectionResponse["messageResponse"] {
  return { case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}

/**
 * Wires reflection into a protomesh server: every added service, plus health
 * when the server serves it.
 */
export function attachReflection(server: { readonly grpc: grpc.Server; readonly services: readonly ServiceDefinition[] }, options: { health: boolean }): void {
  addReflection(server.grpc, {
    definitions: () => server.services,
    extra: () => (options.health ? [{ service: HEALTH_SERVICE, file: healthFile() }] : []),
  });
}
