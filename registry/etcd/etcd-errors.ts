/**
 * What an etcd failure means. An outage is retried; a refusal (bad credentials, no rights on
 * the key) and a TLS failure (no client certificate, a CA that does not sign etcd's
 * certificate, TLS towards a plaintext etcd) are configuration errors that retrying will not
 * fix, and each deserves its own words in the log and in errors.
 */

export type EtcdFailureKind = "access" | "tls" | "unreachable";

/**
 * How grpc-js and OpenSSL word certificate and handshake failures in the status message
 * ("No connection established. Last error: …"). An outage never says these words.
 */
const TLS_FAILURE = /certificate|\balert\b|SSL routines|wrong version number|altnames|self[- ]signed|unable to (?:get|verify)|ERR_SSL_|ERR_TLS_|TLS handshake|secure TLS connection/i;

/** Sorts an etcd error: refused for who is asking, refused by TLS, or (anything else) unreachable. */
export function etcdFailureKind(err: unknown): EtcdFailureKind {
  // etcd3 is loaded lazily (see options.ts); an etcd error means it is loaded already.
  const { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, EtcdUserNotFoundError } = require("etcd3") as typeof import("etcd3");
  if (err instanceof EtcdPermissionDeniedError || err instanceof EtcdAuthenticationFailedError || err instanceof EtcdUserNotFoundError) return "access";
  if (err instanceof Error && TLS_FAILURE.test(err.message)) return "tls";
  return "unreachable";
}

/** True for failures that retrying cannot fix: access refused, or TLS failed. */
export function isConfigurationFailure(err: unknown): boolean {
  return etcdFailureKind(err) !== "unreachable";
}

/** The failure in one line, for logs: the message without a stack (an outage is no bug to trace). */
export function failureReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return `${err.name !== "Error" ? `${err.name}: ` : ""}${err.message}${code && !err.message.includes(String(code)) ? ` (${code})` : ""}`;
}

/** How a failure reads in a sentence: "permission denied: …", "TLS towards etcd failed: …", "etcd unreachable: …". */
export function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  switch (etcdFailureKind(err)) {
    case "access":
      return /permission denied|authentication failed|user name not found/i.test(message) ? `etcd refused access: ${message}` : `etcd refused access (permission denied): ${message}`;
    case "tls":
      return `TLS towards etcd failed: ${message}`;
    default:
      return `etcd unreachable: ${message}`;
  }
}
