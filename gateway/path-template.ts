/**
 * The path template of a `google.api.http` rule, parsed into a list of
 * segments (the grammar of `google/api/http.proto`):
 *
 * ```
 * Template = "/" Segments [ Verb ] ;
 * Segments = Segment { "/" Segment } ;
 * Segment  = "*" | "**" | LITERAL | Variable ;
 * Variable = "{" FieldPath [ "=" Segments ] "}" ;
 * FieldPath = IDENT { "." IDENT } ;
 * Verb     = ":" LITERAL ;
 * ```
 *
 * `{x}` is `{x=*}`; `**` may only be the last segment; variables do not nest.
 */

/** One segment of a parsed template. */
export type TemplateSegment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "deep" };

/** A variable: the field it fills and the range of segments it captures. */
export interface TemplateVariable {
  readonly fieldPath: readonly string[];
  /** Index of the first segment it covers. */
  readonly start: number;
  /** Index one past the last segment it covers (the end of the path when `deep`). */
  readonly end: number;
  /** Whether it covers more than one segment (or `**`): `/` is then kept literally. */
  readonly multi: boolean;
}

export interface PathTemplate {
  /** The text as written. */
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:`, or undefined. */
  readonly verb: string | undefined;
}

/** A template that does not follow the grammar; `offset` is where reading stopped. */
export class TemplateSyntaxError extends Error {
  override readonly name = "TemplateSyntaxError";
  constructor(
    readonly template: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`invalid path template ${JSON.stringify(template)} at ${offset}: ${reason}`);
  }
}

// Characters a LITERAL may hold: RFC 3986 unreserved, sub-delims, ":" and "@"
// (pchar), plus "%" for escapes. "/", "{", "}", "*" and "=" are the grammar's.
const LITERAL_CHAR = /[A-Za-z0-9\-._~!$&'()+,;@%]/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `source`; throws {@link TemplateSyntaxError} naming the position of the first problem. */
export function parseTemplate(source: string): PathTemplate {
  return new Parser(source).parse();
}

class Parser {
  private pos = 0;
  private readonly segments: TemplateSegment[] = [];
  private readonly variables: TemplateVariable[] = [];

  constructor(private readonly src: string) {}

  parse(): PathTemplate {
    if (this.src[0] !== "/") this.fail("a template starts with /");
    this.pos = 1;
    this.segmentsUntil(false);
    let verb: string | undefined;
    if (this.src[this.pos] === ":") {
      this.pos++;
      verb = this.literal();
      if (verb === "") this.fail("empty verb after :");
    }
    if (this.pos !== this.src.length) this.fail(`unexpected ${JSON.stringify(this.src[this.pos])}`);
    const deep = this.segments.findIndex((s) => s.kind === "deep");
    if (deep !== -1 && deep !== this.segments.length - 1) this.fail("** must be the last segment", this.src.indexOf("**"));
    const seen = new Set<string>();
    for (const v of this.variables) {
      const name = v.fieldPath.join(".");
      if (seen.has(name)) this.fail(`variable {${name}} appears twice`);
      seen.add(name);
    }
    return { source: this.src, segments: this.segments, variables: this.variables, verb };
  }

  /** Segments separated by "/", stopping before ":" (verb), "}" (inside a variable) or the end. */
  private segmentsUntil(inVariable: boolean): void {
    for (;;) {
      this.segment(inVariable);
      if (this.src[this.pos] !== "/") return;
      this.pos++;
    }
  }

  private segment(inVariable: boolean): void {
    const c = this.src[this.pos];
    if (c === "*") {
      if (this.src[this.pos + 1] === "*") {
        this.pos += 2;
        this.segments.push({ kind: "deep" });
      } else {
        this.pos++;
        this.segments.push({ kind: "wildcard" });
      }
      return;
    }
    if (c === "{") {
      if (inVariable) this.fail("variables cannot nest");
      this.variable();
      return;
    }
    const value = this.literal();
    if (value === "") this.fail(c === undefined ? "empty segment at the end" : `empty segment before ${JSON.stringify(c)}`);
    this.segments.push({ kind: "literal", value: decodeLiteral(value, this) });
  }

  private variable(): void {
    const open = this.pos;
    this.pos++;
    const close = this.src.slice(this.pos).search(/[=}]/);
    if (close === -1) this.fail("unclosed {", open);
    const path = this.src.slice(this.pos, this.pos + close);
    const fieldPath = path.split(".");
    if (!fieldPath.every((p) => IDENT.test(p))) this.fail(`bad field path ${JSON.stringify(path)}`);
    this.pos += close;
    const start = this.segments.length;
    if (this.src[this.pos] === "=") {
      this.pos++;
      this.segmentsUntil(true);
    } else {
      this.segments.push({ kind: "wildcard" });
    }
    if (this.src[this.pos] !== "}") this.fail("expected } to close the variable");
    this.pos++;
    const end = this.segments.length;
    const multi = end - start > 1 || this.segments[end - 1]?.kind === "deep";
    this.variables.push({ fieldPath, start, end, multi });
  }

  private literal(): string {
    const from = this.pos;
    while (this.pos < this.src.length && LITERAL_CHAR.test(this.src[this.pos])) this.pos++;
    return this.src.slice(from, this.pos);
  }

  fail(reason: string, at = this.pos): never {
    throw new TemplateSyntaxError(this.src, at, reason);
  }
}

function decodeLiteral(value: string, parser: Parser): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return parser.fail(`bad percent-escape in ${JSON.stringify(value)}`);
  }
}

/** The template written back in canonical form (`{x}` for `{x=*}`): equal for templates that match the same paths. */
export function canonicalTemplate(t: PathTemplate, withNames = true): string {
  const parts: string[] = [];
  let i = 0;
  while (i < t.segments.length) {
    const v = t.variables.find((x) => x.start === i);
    if (v) {
      const inner = t.segments.slice(v.start, v.end).map(segmentText).join("/");
      parts.push(withNames ? (inner === "*" ? `{${v.fieldPath.join(".")}}` : `{${v.fieldPath.join(".")}=${inner}}`) : inner);
      i = v.end;
    } else {
      parts.push(segmentText(t.segments[i]));
      i++;
    }
  }
  return `/${parts.join("/")}${t.verb === undefined ? "" : `:${t.verb}`}`;
}

function segmentText(s: TemplateSegment): string {
  return s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**";
}
