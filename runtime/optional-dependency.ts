/**
 * Libraries that only one capability needs (a Postgres driver for transactions, a Redis client
 * for the gateway's cluster rate limits, an OpenTelemetry exporter) are optional peers of
 * protomesh: a service that does not use the capability does not install them. The capability
 * loads them through `requireOptional`, so a missing one is one clear line naming the install
 * command, not a stack trace from deep inside Node's resolver.
 */

/** A capability needs a library that is not installed. */
export class MissingDependencyError extends Error {
  override readonly name: string = "MissingDependencyError";
  constructor(
    /** The npm package that is missing. */
    readonly packageName: string,
    /** What needs it, as the user knows it ("the transaction coordinator's Postgres store"). */
    readonly neededFor: string,
    /** The range to install, as in protomesh's own manifest. */
    readonly range: string,
  ) {
    super(`${neededFor} needs the npm package ${packageName}, which is not installed. Run: npm install ${packageName}@"${range}"`);
  }
}

/**
 * Loads an optional peer dependency, or throws `MissingDependencyError` saying what to install.
 * Errors other than "not found" (a broken install, a native module built for another Node)
 * pass through unchanged: they are not a missing package and the message must not say so.
 *
 * @example
 *   const { Pool } = requireOptional<typeof import("pg")>("pg", "the Postgres transaction store", "~8.16.0");
 */
export function requireOptional<T>(packageName: string, neededFor: string, range: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(packageName) as T;
  } catch (err) {
    if (isNotFound(err, packageName)) throw new MissingDependencyError(packageName, neededFor, range);
    throw err;
  }
}

function isNotFound(err: unknown, packageName: string): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  // Only the package itself being absent counts; a missing file inside it is a broken install.
  return (code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND") && err.message.includes(`'${packageName}'`);
}
