/**
 * The config center's errors. Each says what to do next; `ConfigValidationError`
 * and `ConflictError` carry what a caller needs to react without parsing text.
 */
import type { ConfigIssue } from "./validate";

/** A config-center failure: bad input, nothing stored yet, etcd unreachable with no fallback. */
export class ConfigError extends Error {
  override readonly name: string = "ConfigError";
}

/** A value does not match the schema; `issues` lists every bad field with its path. */
export class ConfigValidationError extends ConfigError {
  override readonly name: string = "ConfigValidationError";

  constructor(
    readonly issues: readonly ConfigIssue[],
    what = "config value",
  ) {
    super(`${what} does not match the schema:\n${issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}`);
  }
}

/** A conditional write found a different current version than it expected (someone else wrote first). */
export class ConflictError extends ConfigError {
  override readonly name: string = "ConflictError";

  constructor(
    readonly expected: number,
    readonly actual: number,
    what = "current version",
  ) {
    super(`${what} is ${actual}, not the expected ${expected}: someone else wrote first; re-read and try again`);
  }
}
