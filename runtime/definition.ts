/**
 * The shape of a service as protomesh sees it. `protoc-gen-protomesh` emits one
 * `ServiceDefinition` per proto service (`GreeterDefinition`); the runtime,
 * reflection and docs read nothing else.
 */

/** The four gRPC call kinds. */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** `idempotency_level` from the proto method options, when set. */
export type Idempotency = "NO_SIDE_EFFECTS" | "IDEMPOTENT";

/** One RPC method: its wire path, kind and (de)serializers. */
export interface MethodDefinition<Req = unknown, Res = unknown> {
  /** Method name as written in the proto (`SayHello`). */
  readonly name: string;
  /** Name used on handler and client objects (`sayHello`). */
  readonly localName: string;
  /** Wire path, `/package.Service/Method`. */
  readonly path: string;
  readonly kind: MethodKind;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** Fully-qualified proto type names, without a leading dot. */
  readonly requestType: string;
  readonly responseType: string;
  readonly idempotency?: Idempotency;
  /** Serializers accept partial messages: unset fields take their proto defaults. */
  readonly requestSerialize: (value: DeepPartial<Req>) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (value: DeepPartial<Res>) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
}

/**
 * A service definition. `H` is the handler interface a server implements and `C`
 * the client interface `createClient` returns; both are phantom (type-only).
 */
export interface ServiceDefinition<H = unknown, C = unknown> {
  /** Fully-qualified service name (`examples.greeter.v1.Greeter`). */
  readonly typeName: string;
  /** The `.proto` file that declares the service. */
  readonly file: string;
  /** Methods keyed by `localName`, in declaration order. */
  readonly methods: { readonly [localName: string]: MethodDefinition<any, any> };
  /**
   * Serialized `google.protobuf.FileDescriptorProto`s (base64): the declaring file and
   * every file it depends on, transitively, dependencies first, with source comments.
   */
  readonly descriptors: readonly string[];
  /** Type-only markers; never set at run time. */
  readonly __handlers?: H;
  readonly __client?: C;
}

/** Handler interface of a definition. */
export type HandlersOf<D> = D extends ServiceDefinition<infer H, any> ? H : never;
/** Client interface of a definition. */
export type ClientOf<D> = D extends ServiceDefinition<any, infer C> ? C : never;

type Builtin = Date | Function | Uint8Array | string | number | boolean | bigint | undefined | null;

/** A message where every field may be left out (it then takes its proto default). */
export type DeepPartial<T> = T extends Builtin
  ? T
  : T extends globalThis.Array<infer U>
    ? globalThis.Array<DeepPartial<U>>
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<DeepPartial<U>>
      : T extends { $case: string }
        ? { [K in keyof Omit<T, "$case">]?: DeepPartial<T[K]> } & { $case: T["$case"] }
        : T extends {}
          ? { [K in keyof T]?: DeepPartial<T[K]> }
          : Partial<T>;
