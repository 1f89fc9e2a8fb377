import type { PathTemplate, TemplateSegment } from "./path-template";

/**
 * Matching request paths against parsed templates, with the percent-decoding
 * rules of `google/api/http.proto`: a single-segment variable gets its segment
 * fully decoded; a multi-segment one keeps reserved characters (RFC 6570) as
 * their escapes, so `%2F` stays `%2F` and the `/` between segments stays `/`.
 */

/** Why a path could not be used, even though its shape matched. */
export class PathError extends Error {
  override readonly name = "PathError";
}

/** A request path split into raw (still percent-encoded) segments, and its verb candidates. */
export interface SplitPath {
  readonly segments: readonly string[];
  /** The text after the last `:` of the last segment, when there is one (it may or may not be a verb). */
  readonly verb: string | undefined;
  /** The segments with the verb removed from the last one. */
  readonly segmentsWithoutVerb: readonly string[] | undefined;
}

/** Splits the path part of a URL (no query). Returns undefined for something that is not an absolute path. */
export function splitPath(path: string): SplitPath | undefined {
  if (path[0] !== "/") return undefined;
  const segments = path.slice(1).split("/");
  const last = segments[segments.length - 1];
  const colon = last.lastIndexOf(":");
  if (colon === -1) return { segments, verb: undefined, segmentsWithoutVerb: undefined };
  const withoutVerb = segments.slice(0, -1);
  withoutVerb.push(last.slice(0, colon));
  return { segments, verb: decodeAll(last.slice(colon + 1)), segmentsWithoutVerb: withoutVerb };
}

/** A compiled template: `match` returns the captured variables (field path → decoded value) or undefined. */
export interface CompiledTemplate {
  readonly template: PathTemplate;
  /** Sort key: more literal segments first, so `/v1/books:special` beats `/v1/{name}`. */
  readonly rank: readonly number[];
  match(segments: readonly string[]): Map<string, string> | undefined;
}

export function compileTemplate(template: PathTemplate): CompiledTemplate {
  const segs = template.segments;
  const deep = segs.length > 0 && segs[segs.length - 1].kind === "deep";
  const fixed = deep ? segs.length - 1 : segs.length;
  return {
    template,
    rank: segs.map(segmentRank),
    match(input) {
      if (deep ? input.length < fixed : input.length !== fixed) return undefined;
      for (let i = 0; i < fixed; i++) {
        const s = segs[i];
        const raw = input[i];
        if (s.kind === "literal") {
          if (!literalEquals(raw, s.value)) return undefined;
        } else if (raw === "") {
          return undefined;
        }
      }
      const out = new Map<string, string>();
      for (const v of template.variables) {
        const end = v.end === segs.length && deep ? input.length : v.end;
        const name = v.fieldPath.join(".");
        if (v.multi) {
          const parts = input.slice(v.start, end);
          for (const p of parts) checkTraversal(decodeAll(p), name);
          out.set(name, parts.map(decodeUnreserved).join("/"));
        } else {
          const value = decodeAll(input[v.start]);
          if (value.includes("/")) throw new PathError(`path variable {${name}} is one segment: it cannot hold %2F`);
          checkTraversal(value, name);
          out.set(name, value);
        }
      }
      return out;
    },
  };
}

function segmentRank(s: TemplateSegment): number {
  return s.kind === "literal" ? 0 : s.kind === "wildcard" ? 1 : 2;
}

/** Orders compiled templates most specific first (literal < `*` < `**`, position by position). */
export function compareSpecificity(a: CompiledTemplate, b: CompiledTemplate): number {
  const n = Math.min(a.rank.length, b.rank.length);
  for (let i = 0; i < n; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i] - b.rank[i];
  return b.rank.length - a.rank.length;
}

function checkTraversal(value: string, name: string): void {
  if (value === "." || value === "..") throw new PathError(`path variable {${name}} cannot be ${JSON.stringify(value)}`);
}

function literalEquals(raw: string, literal: string): boolean {
  if (raw === literal) return true;
  if (!raw.includes("%")) return false;
  try {
    return decodeURIComponent(raw) === literal;
  } catch {
    return false;
  }
}

/** Decodes every escape; a malformed escape or invalid UTF-8 is a {@link PathError}. */
export function decodeAll(raw: string): string {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new PathError(`bad percent-escape in path segment ${JSON.stringify(raw)}`);
  }
}

// RFC 6570 reserved characters: their escapes survive in multi-segment variables.
const RESERVED = new Set(":/?#[]@!$&'()*+,;=".split(""));

/** Decodes escapes except those of reserved characters, which stay (upper-cased). */
export function decodeUnreserved(raw: string): string {
  if (!raw.includes("%")) return raw;
  // Checked on the input: an escape decoded from `%25` must not be mistaken for a bad one.
  if (/%(?![0-9A-Fa-f]{2})/.test(raw)) throw new PathError(`bad percent-escape in path segment ${JSON.stringify(raw)}`);
  // Decode runs of escapes together, so multi-byte UTF-8 sequences stay whole.
  return raw.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    let out = "";
    let pending = "";
    for (let i = 0; i < run.length; i += 3) {
      const esc = run.slice(i, i + 3);
      const byte = parseInt(esc.slice(1), 16);
      if (byte < 0x80 && RESERVED.has(String.fromCharCode(byte))) {
        out += flush(pending) + esc.toUpperCase();
        pending = "";
      } else {
        pending += esc;
      }
    }
    return out + flush(pending);
  });
}

function flush(escapes: string): string {
  if (escapes === "") return "";
  try {
    return decodeURIComponent(escapes);
  } catch {
    throw new PathError(`bad percent-escape (not UTF-8): ${escapes}`);
  }
}
