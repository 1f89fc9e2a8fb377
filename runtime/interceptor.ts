import type { Metadata } from "@grpc/grpc-js";
import type { MethodDefinition } from "./definition";
import type { CallContext } from "./context";

/**
 * A call travelling through an interceptor chain, on either side. For a streaming
 * request `request` is an `AsyncIterable` of messages; otherwise it is the message.
 */
export interface CallRequest {
  readonly side: "client" | "server";
  readonly method: MethodDefinition;
  /** Request metadata; client interceptors may add to it before calling `next`. */
  readonly metadata: Metadata;
  /** Absolute deadline (epoch ms) or undefined. */
  readonly deadline: number | undefined;
  readonly signal: AbortSignal;
  /** The client target (client side) or the caller's peer address (server side). */
  readonly peer: string;
  readonly request: unknown;
  /**
   * Server side: the handler's context. Client side: the handler context given as the call's
   * `parent` option, if one was (tracing parents the call's span on that call's span).
   */
  readonly context?: CallContext;
}

/** The outcome of a call: a message, or an `AsyncIterable` of messages for streaming responses. */
export interface CallResponse {
  readonly response: unknown;
}

/** Performs a call (the rest of the chain). */
export type CallNext = (req: CallRequest) => Promise<CallResponse>;

/**
 * The one interceptor shape of protomesh, used on servers and clients alike: take the
 * rest of the chain, return a new one. Interceptors run in the order they were added.
 *
 * @example
 *   const timing: Interceptor = (next) => async (req) => {
 *     const t0 = Date.now();
 *     try { return await next(req); } finally { log(req.method.path, Date.now() - t0); }
 *   };
 */
export type Interceptor = (next: CallNext) => CallNext;

/** Composes interceptors so the first one given is the outermost. */
export function chain(interceptors: readonly Interceptor[], last: CallNext): CallNext {
  let next = last;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}
