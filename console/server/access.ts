/**
 * Who may reach the console. Without users it runs only on loopback (the
 * laptop and demo default): any other bind address needs `auth: "users"`.
 * On loopback the `Host` header must name loopback too, so a web page whose
 * DNS name was rebound to 127.0.0.1 cannot drive the console from a browser.
 */
import * as net from "node:net";

export type AuthMode = "none" | "users";

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost") return true;
  if (net.isIPv4(h)) return h.startsWith("127.");
  if (net.isIPv6(h)) return h === "::1" || /^::ffff:127\./i.test(h);
  return false;
}

/** Throws when `auth` is not allowed for `host`. */
export function checkAuthMode(host: string, auth: AuthMode): void {
  if (auth === "none" && !isLoopback(host)) {
    throw new Error(`the console binds ${host}, which is not loopback: that needs sign-in (auth "users", \`protomesh console --auth users\`); add a user first with \`protomesh console user add NAME --role admin\``);
  }
}

/** Whether a request's `Host` header is acceptable for a console bound to `bindHost`. */
export function hostAllowed(bindHost: string, hostHeader: string | undefined): boolean {
  if (!isLoopback(bindHost)) return true;
  const name = (hostHeader ?? "").replace(/:\d+$/, "");
  return isLoopback(name);
}

/**
 * A write must come from the console's own page: if the browser sent `Origin`
 * it has to be this host. (The CSRF token is the real check; this stops
 * requests before any work is done.)
 */
export function originAllowed(origin: string | undefined, hostHeader: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === hostHeader;
  } catch {
    return false;
  }
}
