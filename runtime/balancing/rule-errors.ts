/** Why a traffic rule was refused: every problem found, each naming the field it is about. */

/** One problem in a rule, at a field path such as `routes[1].match.headers.x-user.regex`. */
export interface RuleProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Thrown by {@link compileTrafficRule} for a rule that does not validate. `message` names the
 * first problem's field (and counts the others); `problems` lists them all.
 */
export class TrafficRuleError extends Error {
  override readonly name = "TrafficRuleError";

  constructor(readonly problems: readonly RuleProblem[]) {
    super(summarize(problems));
  }
}

function summarize(problems: readonly RuleProblem[]): string {
  if (problems.length === 0) return "invalid traffic rule";
  const first = problems[0];
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
  return `${first.path === "" ? "rule" : first.path}: ${first.message}${more}`;
}

/** Collects problems while a rule is checked, with the current field path. */
export class ProblemList {
  readonly problems: RuleProblem[] = [];

  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }
}

/** `a.b` / `a[1]`: a key that is not a plain identifier-like word still joins with a dot (`headers.x-user`). */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** How a value reads in a message: its JSON for short scalars, else its kind. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return value.length <= 60 ? JSON.stringify(value) : `a ${value.length}-character string`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value;
}
