import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { DescriptorPool } from "../runtime/descriptor-pool";
import { RpcError, Status, fromServiceError } from "../runtime/errors";
import { reflectionMethod } from "../runtime/reflection";
import type { ReflectionRequest, ReflectionResponse, ReflectionVersion } from "../runtime/reflection-proto";

type Question = ReflectionRequest["messageRequest"];
type Answer = ReflectionResponse["messageResponse"];

export interface ReflectionClientOptions {
  /** Sent with the reflection stream (servers may authorize reflection like any call). */
  metadata?: grpc.Metadata;
  /** Absolute deadline (epoch milliseconds) for the whole conversation. */
  deadline?: number;
}

/**
 * Asks a server about its services through gRPC reflection: `grpc.reflection.v1`
 * first, `v1alpha` when the server does not know v1. Files it receives are kept
 * in a {@link DescriptorPool}, so a symbol is fetched once.
 */
export class ReflectionClient {
  readonly pool = new DescriptorPool();
  private version: ReflectionVersion = "v1";
  private stream: ReflectionStream | undefined;
  private answered = false;

  constructor(
    private readonly client: grpc.Client,
    private readonly options: ReflectionClientOptions = {},
  ) {}

  /** The reflection version the server answered with (after the first question). */
  get protocol(): ReflectionVersion {
    return this.version;
  }

  /** Names of the services the server reports, sorted. */
  async listServices(): Promise<string[]> {
    const answer = await this.ask({ case: "listServices", value: "*" });
    if (answer.case !== "listServicesResponse") throw unexpected(answer);
    return answer.value.service.map((s) => s.name).sort();
  }

  /** Fetches the file declaring `symbol` and everything it imports. Throws NOT_FOUND when the server has no such symbol. */
  async loadSymbol(symbol: string): Promise<void> {
    if (this.pool.fileContainingSymbol(symbol) === undefined) await this.receive({ case: "fileContainingSymbol", value: symbol });
    await this.loadImports();
  }

  /** Fetches a file by name, and what it imports. */
  async loadFile(name: string): Promise<void> {
    if (!this.pool.has(name)) await this.receive({ case: "fileByFilename", value: name });
    await this.loadImports();
  }

  /** A registry of every file fetched so far. */
  registry(): FileRegistry {
    return createFileRegistry(create(FileDescriptorSetSchema, { file: this.pool.protos() }));
  }

  close(): void {
    this.stream?.close();
    this.stream = undefined;
  }

  /** Asks for every import not in the pool yet, until the pool is closed under imports. */
  private async loadImports(): Promise<void> {
    for (;;) {
      const missing = this.pool.protos().flatMap((f) => f.dependency).find((d) => !this.pool.has(d));
      if (missing === undefined) return;
      await this.receive({ case: "fileByFilename", value: missing });
      if (!this.pool.has(missing)) throw new RpcError(Status.NOT_FOUND, `server did not send ${missing}`);
    }
  }

  private async receive(question: Question): Promise<void> {
    const answer = await this.ask(question);
    if (answer.case !== "fileDescriptorResponse") throw unexpected(answer);
    for (const bytes of answer.value.fileDescriptorProto) this.pool.add(bytes);
  }

  private async ask(question: Question): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await this.open().ask({ host: "", messageRequest: question });
    } catch (err) {
      const e = RpcError.from(err);
      // Older servers know only v1alpha; they say so by not implementing v1.
      if (e.code === Status.UNIMPLEMENTED && this.version === "v1" && !this.answered) {
        this.close();
        this.version = "v1alpha";
        return this.ask(question);
      }
      throw e;
    }
    this.answered = true;
    if (answer.case === "errorResponse") throw new RpcError(answer.value.errorCode, answer.value.errorMessage);
    return answer;
  }

  private open(): ReflectionStream {
    this.stream ??= new ReflectionStream(this.client, this.version, this.options);
    return this.stream;
  }
}

/** One reflection call: answers come back in the order of the questions. */
class ReflectionStream {
  private readonly call: grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  private readonly waiting: { resolve: (a: Answer) => void; reject: (e: unknown) => void }[] = [];
  private failure: RpcError | undefined;

  constructor(client: grpc.Client, version: ReflectionVersion, options: ReflectionClientOptions) {
    const method = reflectionMethod(version);
    const callOptions: grpc.CallOptions = options.deadline === undefined ? {} : { deadline: options.deadline };
    this.call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, options.metadata ?? new grpc.Metadata(), callOptions);
    this.call.on("data", (response: ReflectionResponse) => this.waiting.shift()?.resolve(response.messageResponse));
    this.call.on("error", (err: grpc.ServiceError) => this.fail(fromServiceError(err)));
    this.call.on("end", () => this.fail(new RpcError(Status.UNAVAILABLE, "reflection stream ended early")));
  }

  ask(request: ReflectionRequest): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(request);
    });
  }

  close(): void {
    this.failure ??= new RpcError(Status.CANCELLED, "reflection stream closed");
    this.call.end();
  }

  private fail(err: RpcError): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}

function unexpected(answer: Answer): RpcError {
  return new RpcError(Status.INTERNAL, `unexpected reflection answer: ${answer.case ?? "empty"}`);
}
