/**
 * A reflection client for specs, written independently of the server's code:
 * grpc-js + proto-loader with the reflection protos that ship inside
 * @grpc/reflection.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

export type Version = "v1" | "v1alpha";

/** A request as proto-loader encodes it (field names as in the .proto). */
export type Request =
  | { file_by_filename: string }
  | { file_containing_symbol: string }
  | { file_containing_extension: { containing_type: string; extension_number: number } }
  | { all_extension_numbers_of_type: string }
  | { list_services: string };

/** A response as proto-loader decodes it (`oneofs: true` names the set member in `message_response`). */
export interface Response {
  valid_host: string;
  message_response: "file_descriptor_response" | "all_extension_numbers_response" | "list_services_response" | "error_response";
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

const PROTO_DIR = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
const clients = new Map<Version, grpc.ServiceClientConstructor>();

function clientClass(version: Version): grpc.ServiceClientConstructor {
  let ctor = clients.get(version);
  if (!ctor) {
    const def = protoLoader.loadSync(path.join(PROTO_DIR, `grpc/reflection/${version}/reflection.proto`), { keepCase: true, oneofs: true, defaults: true, longs: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<Version, { ServerReflection: grpc.ServiceClientConstructor }> } };
    ctor = pkg.grpc.reflection[version].ServerReflection;
    clients.set(version, ctor);
  }
  return ctor;
}

/** One reflection stream; `ask` sends a request and resolves with its response. */
export class ReflectionStream {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Request & { host: string }, Response>;
  private readonly pending: { resolve: (r: Response) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(address: string, version: Version = "v1") {
    const Ctor = clientClass(version);
    this.client = new Ctor(address, grpc.credentials.createInsecure());
    this.call = (this.client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<Request & { host: string }, Response> }).ServerReflectionInfo();
    this.call.on("data", (r: Response) => this.pending.shift()?.resolve(r));
    this.call.on("error", (e: Error) => {
      this.failure = e;
      for (const p of this.pending.splice(0)) p.reject(e);
    });
  }

  ask(request: Request): Promise<Response> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.call.write({ host: "", ...request });
    });
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

/** Sends one request on a fresh stream. */
export async function reflect(address: string, request: Request, version: Version = "v1"): Promise<Response> {
  const stream = new ReflectionStream(address, version);
  try {
    return await stream.ask(request);
  } finally {
    stream.close();
  }
}

/** The files of a file-descriptor response, decoded. */
export function filesOf(response: Response): FileDescriptorProto[] {
  if (!response.file_descriptor_response) throw new Error(`expected files, got ${JSON.stringify(response.error_response ?? response.message_response)}`);
  return response.file_descriptor_response.file_descriptor_proto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}
