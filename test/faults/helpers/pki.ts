/**
 * Test certificates made with openssl at run time: a CA, server certificates
 * with chosen subject alternative names, client certificates, and a second,
 * untrusted CA with its own client certificate.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface KeyPair {
  /** PEM contents. */
  cert: Buffer;
  key: Buffer;
  /** Paths of the PEM files (for tools that take files, such as etcd). */
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  readonly ca: Buffer;
  readonly caFile: string;
  /** Issues a server certificate for `names` (IP addresses and DNS names). */
  server(name: string, names: string[]): KeyPair;
  /** Issues a client certificate with common name `cn`. */
  client(cn: string): KeyPair;
  /** A client certificate from a CA nobody trusts. */
  rogueClient(cn: string): KeyPair;
  /** Removes the files. */
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error("openssl not found: the security specs make their certificates with it (apt-get install -y openssl)");
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr || String(err)}`);
  }
}

/** Creates a CA (and a rogue one) in a temporary directory. P-256 keys keep it fast. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "protomesh-pki-"));
  const newCa = (name: string) => {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  };
  newCa("protomesh-test-ca");
  newCa("rogue-ca");

  const issue = (ca: string, name: string, cn: string, extensions: string): KeyPair => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`], dir);
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
  };

  return {
    dir,
    ca: readFileSync(join(dir, "protomesh-test-ca.crt")),
    caFile: join(dir, "protomesh-test-ca.crt"),
    server(name, names) {
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
      return issue("protomesh-test-ca", name, names[0] ?? name, `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    },
    client: (cn) => issue("protomesh-test-ca", `client-${cn}`, cn, "extendedKeyUsage=clientAuth\n"),
    rogueClient: (cn) => issue("rogue-ca", `rogue-${cn}`, cn, "extendedKeyUsage=clientAuth\n"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
