import * as fs from "node:fs";
import * as tls from "node:tls";

/**
 * The HTTPS listener's key and certificate: read from files (for the CLI) and
 * checked as a pair before anything else starts, so a wrong path, a file that
 * is not PEM or a key that does not belong to the certificate stops the
 * gateway at start with the file named, not at the first client's handshake.
 */

export interface TlsMaterial {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
}

/** A TLS set-up the gateway cannot serve with. */
export class GatewayTlsError extends Error {
  override readonly name = "GatewayTlsError";
}

/** Reads PEM files; the error names the flag's role and the path. */
export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (err as Error).message;
      throw new GatewayTlsError(`cannot read the TLS ${what} ${file}: ${why}`);
    }
  };
  return { cert: read(certFile, "certificate"), key: read(keyFile, "key") };
}

/** Throws {@link GatewayTlsError} when `material` cannot make a TLS context (not PEM, wrong key). */
export function checkTls(material: TlsMaterial): void {
  const text = (v: string | Buffer) => (typeof v === "string" ? v : v.toString("latin1"));
  if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(text(material.cert))) throw new GatewayTlsError("the TLS certificate is not a PEM certificate (no BEGIN CERTIFICATE line)");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text(material.key))) throw new GatewayTlsError("the TLS key is not a PEM private key (no BEGIN PRIVATE KEY line)");
  try {
    tls.createSecureContext({ key: material.key, cert: material.cert });
  } catch (err) {
    const msg = (err as Error).message;
    if (/key values mismatch/i.test(msg)) throw new GatewayTlsError("the TLS key does not belong to the certificate");
    throw new GatewayTlsError(`the TLS key or certificate cannot be used: ${msg}`);
  }
}
