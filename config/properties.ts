/**
 * A reader for Java-style `.properties` files, and the step that turns their
 * flat `path=value` pairs into a nested JSON value:
 *
 * ```properties
 * greeting = Hello
 * rateLimit.burst = 10
 * blockedNames[0] = mallory
 * translations.fr = Bonjour
 * ```
 *
 * Syntax follows `java.util.Properties`: `=`, `:` or whitespace separates key
 * and value; `#` and `!` start comments; a trailing backslash continues a line;
 * `\t \n \r \f \uXXXX` and `\<char>` escapes. Files are read as UTF-8.
 */
import { formatPath, parsePath, type PathSegment } from "./json-path";

export interface PropertyEntry {
  readonly key: string;
  /** Always a string: typing it is the schema's job (see `coerceToSchema`). */
  readonly value: string;
  /** 1-based line where the entry starts. */
  readonly line: number;
}

/** A problem with the file itself, before any schema is involved. */
export interface PropertiesIssue {
  readonly line: number;
  readonly path: string;
  readonly message: string;
}

/** Splits `text` into entries, in file order (a repeated key appears twice). */
export function parseProperties(text: string): PropertyEntry[] {
  const lines = text.split(/\r\n|\r|\n/);
  const entries: PropertyEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const startLine = i + 1;
    let logical = lines[i].replace(/^[ \t\f]+/, "");
    if (logical === "" || logical[0] === "#" || logical[0] === "!") continue;
    while (endsWithContinuation(logical) && i + 1 < lines.length) {
      logical = logical.slice(0, -1) + lines[++i].replace(/^[ \t\f]+/, "");
    }
    if (endsWithContinuation(logical)) logical = logical.slice(0, -1);
    const { key, rest } = splitKey(logical);
    entries.push({ key: unescape(key), value: unescape(rest), line: startLine });
  }
  return entries;
}

function endsWithContinuation(line: string): boolean {
  let n = 0;
  for (let j = line.length - 1; j >= 0 && line[j] === "\\"; j--) n++;
  return n % 2 === 1;
}

function splitKey(line: string): { key: string; rest: string } {
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === "=" || c === ":" || c === " " || c === "\t" || c === "\f") break;
    i++;
  }
  const key = line.slice(0, i);
  let j = i;
  while (j < line.length && /[ \t\f]/.test(line[j])) j++;
  if (line[j] === "=" || line[j] === ":") j++;
  while (j < line.length && /[ \t\f]/.test(line[j])) j++;
  return { key, rest: line.slice(j) };
}

const ESCAPES: Record<string, string> = { t: "\t", n: "\n", r: "\r", f: "\f" };

function unescape(s: string): string {
  return s.replace(/\\(u[0-9A-Fa-f]{4}|.)/g, (_m, e: string) => {
    if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16));
    return ESCAPES[e] ?? e;
  });
}

/** A list under construction: indices may arrive in any order. */
class ListSlots {
  readonly items = new Map<number, unknown>();
}

/**
 * Builds the nested value. Keys are paths (`a.b[0].c`); indices may come in
 * any order but must end up without gaps. Every problem is reported with its
 * line; `lineOf` maps a path (as `formatPath` writes it) to its line.
 */
export function propertiesToTree(entries: readonly PropertyEntry[]): {
  value: Record<string, unknown>;
  issues: PropertiesIssue[];
  lineOf: Map<string, number>;
} {
  const root: Record<string, unknown> = {};
  const issues: PropertiesIssue[] = [];
  const lineOf = new Map<string, number>();
  const firstLine = new Map<string, number>();
  for (const entry of entries) {
    let segments: PathSegment[];
    try {
      segments = parsePath(entry.key);
    } catch (err) {
      issues.push({ line: entry.line, path: entry.key, message: (err as Error).message });
      continue;
    }
    const path = formatPath(segments);
    const earlier = firstLine.get(path);
    if (earlier !== undefined) {
      issues.push({ line: entry.line, path, message: `${path} is already set on line ${earlier}` });
      continue;
    }
    firstLine.set(path, entry.line);
    lineOf.set(path, entry.line);
    const problem = place(root, segments, entry.value);
    if (problem) issues.push({ line: entry.line, path, message: problem });
  }
  // Parents get the line of their first child, so "expected an object" issues point somewhere.
  for (const [path, line] of [...lineOf]) {
    let segments = parsePath(path);
    while (segments.length > 1) {
      segments = segments.slice(0, -1);
      const parent = formatPath(segments);
      if (!lineOf.has(parent) || lineOf.get(parent)! > line) lineOf.set(parent, line);
    }
  }
  return { value: finish(root, [], issues, firstLine) as Record<string, unknown>, issues, lineOf };
}

function place(root: Record<string, unknown>, segments: readonly PathSegment[], value: string): string | undefined {
  let node: Record<string, unknown> | ListSlots = root;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    const isList = node instanceof ListSlots;
    if (isList !== (typeof seg === "number")) {
      return `${formatPath(segments.slice(0, i)) || "(root)"} is used both as ${isList ? "a list" : "an object"} and as ${isList ? "an object" : "a list"}`;
    }
    const existing: unknown = node instanceof ListSlots ? node.items.get(seg as number) : node[seg as string];
    if (last) {
      if (existing !== undefined) return `${formatPath(segments)} is also a parent of other keys`;
      if (node instanceof ListSlots) node.items.set(seg as number, value);
      else node[seg as string] = value;
      return undefined;
    }
    let next = existing;
    if (next === undefined) {
      next = typeof segments[i + 1] === "number" ? new ListSlots() : {};
      if (node instanceof ListSlots) node.items.set(seg as number, next);
      else node[seg as string] = next;
    } else if (typeof next === "string") {
      return `${formatPath(segments.slice(0, i + 1))} has a value and is also a parent of other keys`;
    }
    node = next as Record<string, unknown> | ListSlots;
  }
  return undefined;
}

function finish(node: unknown, path: PathSegment[], issues: PropertiesIssue[], lines: Map<string, number>): unknown {
  if (node instanceof ListSlots) {
    const size = Math.max(-1, ...node.items.keys()) + 1;
    const out: unknown[] = [];
    for (let i = 0; i < size; i++) {
      if (!node.items.has(i)) {
        const at = formatPath([...path, i]);
        issues.push({ line: lines.get(formatPath([...path, i + 1])) ?? 0, path: at, message: `${at} is missing (list indices must start at 0 without gaps)` });
        continue;
      }
      out.push(finish(node.items.get(i), [...path, i], issues, lines));
    }
    return out;
  }
  if (typeof node === "object" && node !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = finish(v, [...path, k], issues, lines);
    return out;
  }
  return node;
}
