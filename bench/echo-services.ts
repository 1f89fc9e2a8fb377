/**
 * The echo service each contender serves, written the way a user of that library would
 * write it: `SayHello` returns the request's name, `StreamHellos` streams `count` replies
 * whose message is the request's name. All three use the same ts-proto messages.
 */
import * as grpc from "@grpc/grpc-js";
import type { ServiceImplementation } from "nice-grpc";
import type { GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";
import { GreeterService, HelloReply, HelloRequest, StreamHellosRequest, type GreeterServer } from "../gen/examples/greeter/v1/greeter";

/** A message body of `bytes` ASCII characters (so `bytes` bytes on the wire, plus framing). */
export function payload(bytes: number): string {
  return "x".repeat(bytes);
}

/** A ts-proto message as nice-grpc reads it; `fromPartial` typed plainly (ts-proto's generic signature confuses nice-grpc's inference). */
interface NiceMessage<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: Partial<T>): T;
}

/**
 * What ts-proto emits for nice-grpc (`outputServices=nice-grpc`), built over the same
 * messages: nice-grpc serializes through `fromPartial`, as it does in a real project.
 */
export const NiceGreeterDefinition = {
  name: "Greeter",
  fullName: "examples.greeter.v1.Greeter",
  methods: {
    sayHello: {
      name: "SayHello",
      requestType: HelloRequest as NiceMessage<HelloRequest>,
      requestStream: false,
      responseType: HelloReply as NiceMessage<HelloReply>,
      responseStream: false,
      options: {},
    },
    streamHellos: {
      name: "StreamHellos",
      requestType: StreamHellosRequest as NiceMessage<StreamHellosRequest>,
      requestStream: false,
      responseType: HelloReply as NiceMessage<HelloReply>,
      responseStream: true,
      options: {},
    },
  },
} as const;

/** Raw grpc-js handlers; the stream honours back-pressure, as a careful raw implementation must. */
export function rawEchoHandlers(): { service: typeof GreeterService; implementation: grpc.UntypedServiceImplementation } {
  const implementation: Partial<GreeterServer> = {
    sayHello(call, callback) {
      callback(null, { message: call.request.name, servedBy: "", at: undefined });
    },
    streamHellos(call) {
      const { name, count } = call.request;
      let sent = 0;
      const writeSome = () => {
        while (sent < count) {
          if (call.cancelled) return;
          sent++;
          if (!call.write({ message: name, servedBy: "", at: undefined })) {
            call.once("drain", writeSome);
            return;
          }
        }
        call.end();
      };
      writeSome();
    },
  };
  return { service: GreeterService, implementation: implementation as grpc.UntypedServiceImplementation };
}

/** protomesh handlers: plain async functions and generators. */
export function protomeshEchoHandlers(): Pick<GreeterHandlers, "sayHello" | "streamHellos"> {
  return {
    async sayHello(req) {
      return { message: req.name };
    },
    async *streamHellos(req) {
      for (let i = 0; i < req.count; i++) yield { message: req.name };
    },
  };
}

/** nice-grpc handlers. */
export function niceEchoHandlers(): ServiceImplementation<typeof NiceGreeterDefinition> {
  return {
    async sayHello(req) {
      return { message: req.name };
    },
    async *streamHellos(req) {
      for (let i = 0; i < req.count; i++) yield { message: req.name };
    },
  };
}
