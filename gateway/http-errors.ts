import { RpcError, Status } from "../runtime/errors";

/**
 * gRPC status → HTTP status (`google/rpc/code.proto`), and the error body:
 * a `google.rpc.Status` in proto3 JSON. The gateway's own refusals (404, 405,
 * 413, 415, 401, 429, …) use the same shape, so a client parses one format.
 */

const HTTP_OF_CODE: Record<number, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.UNAUTHENTICATED]: 401,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
};

/** The HTTP status for a gRPC code (500 for a code outside code.proto). */
export function httpStatusOf(code: number): number {
  return HTTP_OF_CODE[code] ?? 500;
}

/** The `@type` under which our `RpcError.details` (any JSON) travel: a `google.protobuf.Value`. */
export const VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value";

/** `google.rpc.Status` as JSON. */
export interface StatusJson {
  code: number;
  message: string;
  details: { "@type": string; [key: string]: unknown }[];
}

/** The JSON body for `err`. RpcError details become one `google.protobuf.Value` detail. */
export function statusJson(err: RpcError): StatusJson {
  const details: StatusJson["details"] = [];
  if (err.details !== undefined) details.push({ "@type": VALUE_TYPE_URL, value: err.details });
  return { code: err.code, message: err.rawMessage, details };
}

/** An error the gateway raises itself, with the HTTP status and extra headers it wants. */
export class GatewayError extends RpcError {
  constructor(
    code: Status,
    message: string,
    readonly httpStatus: number = httpStatusOf(code),
    readonly headers: Readonly<Record<string, string>> = {},
    details?: unknown,
  ) {
    super(code, message, details);
  }
}

/**
 * A failure of the upstream call that the channel or transport made, not the upstream service
 * (no server, connection lost, the deadline passed): its code, a generic message, and the
 * request id as its detail. The original (which names internal addresses) is its cause, logged.
 */
export class UpstreamFailure extends RpcError {}

/** The HTTP status for any error the gateway answers with. */
export function httpStatusOfError(err: RpcError): number {
  return err instanceof GatewayError ? err.httpStatus : httpStatusOf(err.code);
}
