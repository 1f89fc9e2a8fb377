/**
 * What a server exposes by default depends on where it listens. On loopback only this machine
 * can call it, so reflection (which describes the whole API) is on for the explorer and the docs'
 * try-it; beyond loopback it is off unless asked for or the process runs in development, and
 * plaintext there is warned about.
 */
import * as net from "node:net";

/** The default listen address: this machine only. Pass `0.0.0.0:<port>` (or an interface's address) to serve others. */
export const DEFAULT_LISTEN_ADDRESS = "127.0.0.1:0";

/** `PROTOMESH_ENV` values that mean "a developer's machine or a test run". */
const DEVELOPMENT_ENVS = new Set(["dev", "development", "local", "test"]);

/** True when every address is a loopback one (127.0.0.0/8, ::1, IPv4-mapped loopback). */
export function isLoopbackOnly(addresses: readonly string[]): boolean {
  return addresses.length > 0 && addresses.every(isLoopback);
}

function isLoopback(address: string): boolean {
  const bare = address.replace(/^::ffff:/i, "");
  if (net.isIPv4(bare)) return bare.startsWith("127.");
  return bare === "::1";
}

/** True when `PROTOMESH_ENV` names a development or test environment. */
export function isDevelopmentEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return DEVELOPMENT_ENVS.has((env.PROTOMESH_ENV ?? "").toLowerCase());
}

/**
 * Whether to serve reflection, and why (for the log): the `reflection` option if set,
 * else on for loopback-only binds and development environments.
 */
export function reflectionDecision(option: boolean | undefined, loopbackOnly: boolean, env: NodeJS.ProcessEnv = process.env): { serve: boolean; why: string } {
  if (option !== undefined) return { serve: option, why: `reflection: ${option}` };
  if (loopbackOnly) return { serve: true, why: "bound to loopback only" };
  if (isDevelopmentEnv(env)) return { serve: true, why: `PROTOMESH_ENV=${env.PROTOMESH_ENV}` };
  return { serve: false, why: "bound beyond loopback; pass `reflection: true` (or set PROTOMESH_ENV=dev) to serve it" };
}
