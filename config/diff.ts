/**
 * Field-level differences between two config values (proto JSON), for
 * `protomesh config diff` and change logs: one line per leaf that differs.
 */
import { formatPath, type PathSegment } from "./json-path";

export interface ConfigDifference {
  readonly path: string;
  readonly kind: "added" | "removed" | "changed";
  readonly before?: unknown;
  readonly after?: unknown;
}

/** Every leaf that differs between `before` and `after`, in path order. */
export function diffConfig(before: unknown, after: unknown): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  walk(before, after, [], out);
  return out;
}

function walk(a: unknown, b: unknown, path: PathSegment[], out: ConfigDifference[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) walk(a[k], b[k], [...path, k], out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) walk(a[i], b[i], [...path, i], out);
    return;
  }
  if (a === undefined && b === undefined) return;
  const where = formatPath(path);
  if (a === undefined) out.push({ path: where, kind: "added", after: b });
  else if (b === undefined) out.push({ path: where, kind: "removed", before: a });
  else if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path: where, kind: "changed", before: a, after: b });
}

/** `+ path: value`, `- path: value`, `~ path: before → after`, one per line. */
export function formatDiff(differences: readonly ConfigDifference[]): string {
  return differences
    .map((d) => {
      const path = d.path || "(root)";
      if (d.kind === "added") return `+ ${path}: ${JSON.stringify(d.after)}`;
      if (d.kind === "removed") return `- ${path}: ${JSON.stringify(d.before)}`;
      return `~ ${path}: ${JSON.stringify(d.before)} → ${JSON.stringify(d.after)}`;
    })
    .join("\n");
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
