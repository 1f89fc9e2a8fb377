import type { DescMessage } from "@bufbuild/protobuf";
import { protobuf } from "./protobuf-runtime";

/**
 * grpc-js (de)serializers for a message known only by its descriptor. `T` is the
 * shape the caller reads and writes (plain objects, oneofs as `{ case, value }`);
 * it is not checked against the descriptor.
 */
export interface MessageCodec<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
}

export function messageCodec<T>(desc: DescMessage): MessageCodec<T> {
  const { create, fromBinary, toBinary } = protobuf();
  return {
    serialize: (value) => {
      // toBinary returns a fresh array: wrap it rather than copy it.
      const bytes = toBinary(desc, create(desc, value as never));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => fromBinary(desc, bytes) as unknown as T,
  };
}
