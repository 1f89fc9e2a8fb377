import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";

export { status as Status } from "@grpc/grpc-js";
/** A gRPC status code (`Status.NOT_FOUND`, …). */
export type Code = Status;

const DETAILS_KEY = "protomesh-error-details-bin";

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Status).filter(([, v]) => typeof v === "number").map(([k, v]) => [v as number, k]),
);

/** `NOT_FOUND` for 5, and so on. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

/**
 * The one error type of protomesh, on both sides of a call. Throw it from a handler
 * and the client catches an `RpcError` with the same code, message and details.
 *
 * @example
 *   throw new RpcError(Status.NOT_FOUND, "no such user", { userId });
 */
export class RpcError extends Error {
  override readonly name = "RpcError";
  readonly code: Code;
  /** JSON-serializable details; they travel in the `protomesh-error-details-bin` trailer. */
  readonly details: unknown;
  /** Trailers received with the error (client side) or to send with it (server side). */
  readonly metadata: Metadata;
  /** Bare message, without the code prefix that `message` carries. */
  readonly rawMessage: string;

  constructor(code: Code, message: string, details?: unknown, options?: { cause?: unknown; metadata?: Metadata }) {
    super(`[${codeName(code)}] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rawMessage = message;
    this.details = details;
    this.metadata = options?.metadata ?? new Metadata();
  }

  /**
   * Turns anything thrown into an `RpcError`. An `RpcError` passes through; a grpc-js
   * `ServiceError` keeps its code; anything else becomes `fallbackCode` (INTERNAL)
   * with a generic message, so no stack or internal text reaches a caller.
   */
  static from(reason: unknown, fallbackCode: Code = Status.INTERNAL): RpcError {
    if (reason instanceof RpcError) return reason;
    if (isServiceError(reason)) return fromServiceError(reason);
    if (isAbortError(reason)) return new RpcError(Status.CANCELLED, "call cancelled", undefined, { cause: reason });
    return new RpcError(fallbackCode, fallbackCode === Status.INTERNAL ? "internal error" : String(reason), undefined, { cause: reason });
  }

  /** Trailers that carry this error's details over the wire. */
  toTrailers(): Metadata {
    const md = this.metadata.clone();
    if (this.details !== undefined) {
      try {
        md.set(DETAILS_KEY, Buffer.from(JSON.stringify(this.details), "utf8"));
      } catch {
        // Details that cannot be serialized are dropped rather than failing the call.
      }
    }
    return md;
  }
}

function isAbortError(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "AbortError";
}

function isServiceError(e: unknown): e is ServiceError {
  return (
    e instanceof Error &&
    typeof (e as Partial<ServiceError>).code === "number" &&
    (e as Partial<ServiceError>).metadata instanceof Metadata
  );
}

/** Builds an `RpcError` from a grpc-js client-side error, decoding our details trailer. */
export function fromServiceError(e: ServiceError): RpcError {
  let details: unknown;
  const raw = e.metadata.get(DETAILS_KEY)[0];
  if (raw !== undefined) {
    try {
      details = JSON.parse(Buffer.isBuffer(raw) ? raw.toString("utf8") : String(raw));
    } catch {
      details = undefined;
    }
    e.metadata.remove(DETAILS_KEY);
  }
  return new RpcError(e.code, withoutEmptyResolutionNote(e.details ?? e.message), details, { metadata: e.metadata });
}

/**
 * grpc-js appends `Resolution note: ` to UNAVAILABLE messages, with nothing after it when the
 * resolver had nothing to add: noise in every message that reaches a user.
 */
export function withoutEmptyResolutionNote(message: string): string {
  return message.replace(/\.?\s*Resolution note:\s*$/, "");
}
