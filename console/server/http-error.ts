/**
 * The one error the console's HTTP API throws: a status and a message the
 * browser shows as is. Anything else thrown by a handler is a bug and answers
 * 500 without its stack.
 */
export class HttpError extends Error {
  override readonly name: string = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    /** Extra JSON for the body (validation issues, conflicts). */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** 400 with a message. */
export const badRequest = (message: string, details?: unknown) => new HttpError(400, message, details);
/** 404 with a message. */
export const notFound = (message: string) => new HttpError(404, message);
