import type { Metadata } from "@grpc/grpc-js";
import type { MethodDefinition } from "./definition";

/** What a handler knows about the call it is serving. */
export interface CallContext {
  /** The method being served. */
  readonly method: MethodDefinition;
  /** Request metadata (headers) sent by the caller. */
  readonly metadata: Metadata;
  /** The caller's address, as grpc-js reports it (`ipv4:127.0.0.1:50123`). */
  readonly peer: string;
  /** Absolute deadline in epoch milliseconds, or `undefined` when the caller set none. */
  readonly deadline: number | undefined;
  /** Milliseconds left before the deadline (never negative), or `undefined` without one. */
  remainingMs(): number | undefined;
  /** Fires when the caller cancels, the deadline passes or the server force-closes. */
  readonly signal: AbortSignal;
  /** Metadata to send back as response headers; send happens with the first message. */
  readonly responseHeader: Metadata;
  /** Metadata to send back as trailers. */
  readonly responseTrailer: Metadata;
}

/** Per-call client options. */
export interface CallOptions {
  /** Relative deadline in milliseconds. Inside a handler the caller's remaining deadline applies too (the earlier wins). */
  deadlineMs?: number;
  /** Absolute deadline (a `Date` or epoch milliseconds). */
  deadline?: Date | number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
  /** Request metadata: a grpc-js `Metadata` or a plain record. */
  metadata?: Metadata | Record<string, string | string[]>;
  /** Key for consistent-hash balancing; sets the policy's hash header on this call. */
  hashKey?: string;
  /** Do not inherit the deadline and cancellation of the handler this call is made from. */
  detached?: boolean;
  /**
   * The handler context whose deadline and cancellation this call inherits. Inside a handler
   * that is found on its own (the call scope); pass it when the server runs with
   * `callScope: false`, or to tie a call made elsewhere to a served call.
   */
  parent?: CallContext;
  /** Called with the response headers when they arrive. */
  onHeader?: (header: Metadata) => void;
  /** Called with the trailers when the call ends (also on error). */
  onTrailer?: (trailer: Metadata) => void;
}
