/** Why a TLS connection was refused, in words an operator (and the refused client) can act on. */
import type * as net from "node:net";
import type * as tls from "node:tls";

/** A refused client certificate: the reason sent to the client, and fields for the server's log. */
export interface CertificateRefusal {
  reason: string;
  fields: Record<string, unknown>;
}

const CERTIFICATE_ERRORS: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "not signed by a CA this server trusts",
  UNABLE_TO_GET_ISSUER_CERT: "not signed by a CA this server trusts",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "not signed by a CA this server trusts",
  SELF_SIGNED_CERT_IN_CHAIN: "its chain ends in a CA this server does not trust",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed, and this server does not trust it",
  CERT_HAS_EXPIRED: "expired",
  CERT_NOT_YET_VALID: "not valid yet",
  CERT_SIGNATURE_FAILURE: "its signature does not verify",
  CERT_REVOKED: "revoked",
  INVALID_PURPOSE: "not issued for client authentication",
};

/** Why the client's certificate is refused (none sent, untrusted issuer, expired, …). */
export function certificateRefusal(socket: tls.TLSSocket): CertificateRefusal {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    return { reason: "certificate required, and the client sent none", fields: {} };
  }
  const code = String(socket.authorizationError ?? "UNKNOWN");
  const words = CERTIFICATE_ERRORS[code] ?? "not accepted";
  return {
    reason: `${words} (${code})`,
    fields: { code, subject: cert.subject?.CN, issuer: cert.issuer?.CN },
  };
}

/**
 * A failed handshake in words. `quiet` marks a peer that hung up before sending anything
 * useful (a TCP health check, a port scan's connect): worth a debug line, not a warning.
 */
export function describeTlsError(err: Error): { text: string; quiet: boolean } {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  const message = err.message.replace(/^error:[0-9A-F]+:SSL routines:[^:]*:/i, "");
  if (code === "ERR_TLS_HANDSHAKE_TIMEOUT") return { text: "TLS handshake not finished in time (handshakeTimeoutMs)", quiet: false };
  if (code === "ECONNRESET" || /socket disconnected before secure/i.test(message)) {
    return { text: "the client hung up before the handshake finished", quiet: true };
  }
  if (/alert/i.test(message)) return { text: `the client refused the handshake: ${message}`, quiet: false };
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_HTTP_REQUEST" || /wrong version number|http request/i.test(message)) {
    return { text: `not a TLS client (plaintext or HTTP/1.1 at a TLS port): ${message}`, quiet: false };
  }
  if (code === "ERR_SSL_NO_APPLICATION_PROTOCOL") return { text: "the client does not offer HTTP/2 (ALPN h2)", quiet: false };
  return { text: message, quiet: false };
}

/** `address:port` of a socket's peer (`[v6]:port`). */
export function peerOf(socket: net.Socket): string {
  return formatPeer(socket.remoteAddress, socket.remotePort);
}

export function formatPeer(address: string | undefined, port: number | undefined): string {
  if (!address) return "unknown";
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
