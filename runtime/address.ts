import { networkInterfaces } from "node:os";

/** Splits `host:port`, `[v6]:port` or `:port`; throws a clear error on anything else. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(address.trim());
  if (!m) throw new TypeError(`invalid listen address "${address}": expected host:port (for example 127.0.0.1:0)`);
  const port = Number(m[3]);
  if (port > 65535) throw new RangeError(`invalid listen address "${address}": port out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** The address to publish for a bound server: wildcard hosts become this machine's first external IPv4. */
export function advertisedAddress(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "::" || host === "") {
    for (const list of Object.values(networkInterfaces())) {
      for (const iface of list ?? []) if (iface.family === "IPv4" && !iface.internal) return `${iface.address}:${port}`;
    }
    return `127.0.0.1:${port}`;
  }
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
