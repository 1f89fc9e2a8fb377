/**
 * A bound on the metadata one side of a call sends. HTTP/2 peers cap a header
 * block (Node's default SETTINGS_MAX_HEADER_LIST_SIZE is 64 KiB, counted as
 * name + value + 32 bytes per field, which is how we count too). Past the cap
 * a Node server resets the request with a code that surfaces as INTERNAL, and
 * a Node client silently drops an oversized response header block: that call,
 * and every later call on the same connection, then waits for its deadline.
 * Half the cap leaves room for the fields grpc-js adds (status, message,
 * timeout, content type). Other gRPC stacks refuse even less (C-core: 8-16 KiB).
 */
import type { Metadata } from "@grpc/grpc-js";

/** Largest request or response metadata (headers, or trailers) protomesh sends, in bytes. */
export const MAX_METADATA_BYTES = 32 * 1024;

/** Longest status message a server sends, in characters; longer ones are cut (percent-encoding can triple them). */
export const MAX_STATUS_MESSAGE_CHARS = 1024;

/** Size of `metadata` as HTTP/2 counts it: name + value + 32 per field, binary values base64-encoded. */
export function metadataBytes(metadata: Metadata): number {
  let total = 0;
  for (const [key, value] of Object.entries(metadata.toHttp2Headers())) {
    for (const v of Array.isArray(value) ? value : [value]) total += key.length + String(v).length + 32;
  }
  return total;
}

/** Removes every field of `metadata`. */
export function clearMetadata(metadata: Metadata): void {
  for (const key of Object.keys(metadata.toHttp2Headers())) metadata.remove(key);
}
