/**
 * Where the config center keeps things in etcd. Under one prefix per
 * namespace, environment and application:
 *
 * ```
 * /protomesh/<namespace>/config/<env>/<app>/current               {"version":7}
 * /protomesh/<namespace>/config/<env>/<app>/gray                  {"version":8,"match":{"zone":"b"},…}
 * /protomesh/<namespace>/config/<env>/<app>/versions/0000000007   {"version":7,"value":{…},"author":…}
 * ```
 *
 * Versions are immutable once written; `current` and `gray` point at them.
 * Anything else under the prefix is garbage: reported, never loaded.
 */

/** Digits of a version number in its key, so keys sort in version order. */
export const VERSION_DIGITS = 10;
/** Highest version number a key can hold. */
export const MAX_VERSION = 10 ** VERSION_DIGITS - 1;

const SEGMENT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Throws unless `name` can be an environment or application path segment. */
export function checkName(name: string, what: "env" | "app"): string {
  if (typeof name !== "string" || !SEGMENT_PATTERN.test(name)) {
    throw new Error(`invalid ${what} ${JSON.stringify(name)}: use 1-63 characters from [A-Za-z0-9._-], starting with a letter or digit`);
  }
  return name;
}

/** The prefix of one application's config in one environment, with a trailing slash. */
export function configPrefix(namespace: string, env: string, app: string): string {
  return `/protomesh/${namespace}/config/${checkName(env, "env")}/${checkName(app, "app")}/`;
}

/** The keys of one application's config. */
export interface ConfigKeys {
  readonly prefix: string;
  readonly current: string;
  readonly gray: string;
  /** Prefix of the numbered versions. */
  readonly versions: string;
  version(n: number): string;
}

export function configKeys(namespace: string, env: string, app: string): ConfigKeys {
  const prefix = configPrefix(namespace, env, app);
  const versions = `${prefix}versions/`;
  return {
    prefix,
    current: `${prefix}current`,
    gray: `${prefix}gray`,
    versions,
    version: (n) => `${versions}${String(n).padStart(VERSION_DIGITS, "0")}`,
  };
}

/** What a key under the prefix is. */
export type KeyKind = { kind: "current" } | { kind: "gray" } | { kind: "version"; version: number } | { kind: "unknown" };

const VERSION_KEY = new RegExp(`^versions/(\\d{${VERSION_DIGITS}})$`);

export function classifyKey(keys: ConfigKeys, key: string): KeyKind {
  if (key === keys.current) return { kind: "current" };
  if (key === keys.gray) return { kind: "gray" };
  if (key.startsWith(keys.prefix)) {
    const m = VERSION_KEY.exec(key.slice(keys.prefix.length));
    if (m && Number(m[1]) > 0) return { kind: "version", version: Number(m[1]) };
  }
  return { kind: "unknown" };
}
