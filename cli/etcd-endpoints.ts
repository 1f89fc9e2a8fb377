/**
 * The etcd endpoints of a command line. Commands look them up here, before they build a registry
 * or an etcd client, so that a missing etcd reads in the command line's terms (its flag, the
 * environment it was given) rather than the library's (`endpoints`, an option of `etcdRegistry`).
 */
import { CliError } from "./command";

/**
 * The endpoints from `flagValue` (comma-separated), else from `env.ETCD_ENDPOINTS`; throws a
 * {@link CliError} when there are none. `flag` names the command's flag for them (`--endpoints`,
 * `--etcd`); leave it out for a command that reads only ETCD_ENDPOINTS.
 */
export function cliEtcdEndpoints(flagValue: string | undefined, env: NodeJS.ProcessEnv, flag?: string): string[] {
  const endpoints = etcdEndpointsOf(flagValue, env);
  if (endpoints.length === 0) throw new CliError(noEtcdEndpoints(flag));
  return endpoints;
}

/** The endpoints from `flagValue` (comma-separated), else from `env.ETCD_ENDPOINTS`; none is `[]`. */
export function etcdEndpointsOf(flagValue: string | undefined, env: NodeJS.ProcessEnv): string[] {
  return (flagValue ?? env.ETCD_ENDPOINTS ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
}

/** What a command without etcd endpoints says: `no etcd endpoints: pass --endpoints host:port or set ETCD_ENDPOINTS`. */
export function noEtcdEndpoints(flag?: string): string {
  return `no etcd endpoints: ${flag === undefined ? "set ETCD_ENDPOINTS=host:port" : `pass ${flag} host:port or set ETCD_ENDPOINTS`}`;
}
