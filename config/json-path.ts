/**
 * Field paths as people write them: `rateLimit.burst`, `blockedNames[2]`,
 * `translations.fr`, `translations["pt-BR"]`. Used in error messages, by
 * `protomesh config set path=value` and by the `.properties` reader.
 */

export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Formats segments as a path; keys that are not identifiers are bracketed and quoted. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Parses a path into segments; throws on a malformed one. */
export function parsePath(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`bad path ${JSON.stringify(path)}: ${why}`);
  };
  while (i < path.length) {
    if (path[i] === "[") {
      const close = path[i + 1] === '"' ? findQuoteEnd(path, i + 1) + 1 : path.indexOf("]", i);
      if (close <= i || path[close] !== "]") fail(`unclosed "[" at ${i}`);
      const inner = path.slice(i + 1, close);
      if (/^\d+$/.test(inner)) segments.push(Number(inner));
      else if (inner.startsWith('"')) segments.push(JSON.parse(inner) as string);
      else fail(`"[${inner}]" is neither an index nor a quoted key`);
      i = close + 1;
      if (path[i] === ".") {
        i++;
        if (i >= path.length) fail("ends with a dot");
      }
      continue;
    }
    let end = i;
    while (end < path.length && path[end] !== "." && path[end] !== "[") end++;
    const name = path.slice(i, end);
    if (name === "") fail(`empty name at ${i}`);
    segments.push(name);
    i = end;
    if (path[i] === ".") {
      i++;
      if (i >= path.length) fail("ends with a dot");
    }
  }
  if (segments.length === 0) fail("it is empty");
  return segments;
}

function findQuoteEnd(path: string, open: number): number {
  for (let j = open + 1; j < path.length; j++) {
    if (path[j] === "\\") j++;
    else if (path[j] === '"') return j;
  }
  return -1;
}

/**
 * Sets `value` at `segments` inside `root`, creating objects (and arrays, for
 * numeric segments) on the way. Throws when the path runs through a value that
 * is neither, or sets an index more than one past an array's end.
 */
export function setPath(root: Record<string, unknown>, segments: readonly PathSegment[], value: unknown): void {
  let node: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (typeof seg === "number") {
      if (!Array.isArray(node)) throw new Error(`${formatPath(segments.slice(0, i)) || "(root)"} is not a list`);
      if (seg > node.length) throw new Error(`${formatPath(segments.slice(0, i + 1))}: index past the end of the list (length ${node.length})`);
    } else if (Array.isArray(node) || typeof node !== "object" || node === null) {
      throw new Error(`${formatPath(segments.slice(0, i)) || "(root)"} is not an object`);
    }
    const container = node as Record<string | number, unknown>;
    if (last) {
      container[seg] = value;
      return;
    }
    let next = container[seg];
    if (next === undefined || next === null) {
      next = typeof segments[i + 1] === "number" ? [] : {};
      container[seg] = next;
    } else if (typeof next !== "object") {
      throw new Error(`${formatPath(segments.slice(0, i + 1))} already holds ${JSON.stringify(next)}, not an object or list`);
    }
    node = next as Record<string, unknown> | unknown[];
  }
}

/** Removes the value at `segments` (a missing path is not an error). */
export function deletePath(root: Record<string, unknown>, segments: readonly PathSegment[]): void {
  let node: unknown = root;
  for (let i = 0; i < segments.length - 1; i++) {
    if (typeof node !== "object" || node === null) return;
    node = (node as Record<string | number, unknown>)[segments[i]];
  }
  if (typeof node !== "object" || node === null) return;
  const last = segments[segments.length - 1];
  if (Array.isArray(node) && typeof last === "number") node.splice(last, 1);
  else delete (node as Record<string | number, unknown>)[last];
}
