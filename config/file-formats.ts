/**
 * Config files in the formats teams already have: JSON, YAML and Java-style
 * `.properties`. Each becomes a proto JSON value, checked against the schema,
 * with every problem reported by field path and, where the format allows, line.
 */
import { extname } from "node:path";
import { LineCounter, parseDocument, isNode } from "yaml";
import { coerceStrings } from "./coerce";
import { normalizeConfig, type ConfigSchema } from "./definition";
import { parsePath, type PathSegment } from "./json-path";
import { parseProperties, propertiesToTree } from "./properties";
import type { JsonObject } from "./records";

export type ConfigFormat = "json" | "yaml" | "properties";

/** A problem with a file: a field path (empty for the file as a whole) and, when known, a 1-based line. */
export interface FileIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
}

export type FileCheck = { ok: true; json: JsonObject } | { ok: false; issues: FileIssue[] };

/** The format a file name implies, if any. */
export function formatOf(file: string): ConfigFormat | undefined {
  switch (extname(file).toLowerCase()) {
    case ".json":
      return "json";
    case ".yaml":
    case ".yml":
      return "yaml";
    case ".properties":
      return "properties";
    default:
      return undefined;
  }
}

/**
 * Parses `text` as `format` and validates it against `schema` (unknown fields
 * rejected). Returns the canonical proto JSON, or every problem found.
 */
export function checkConfigText(schema: ConfigSchema, text: string, format: ConfigFormat): FileCheck {
  const parsed = parseText(text, format);
  if (parsed.issues.length > 0 && parsed.value === undefined) return { ok: false, issues: parsed.issues };
  const value = format === "properties" ? coerceStrings(schema.desc, parsed.value) : parsed.value;
  const result = normalizeConfig(schema, value);
  const issues = [...parsed.issues];
  if (!result.ok) {
    for (const issue of result.issues) issues.push({ ...issue, ...lineField(parsed.lineOf(issue.path)) });
  }
  if (issues.length > 0 || !result.ok) return { ok: false, issues: dedupe(issues) };
  return { ok: true, json: result.json };
}

interface Parsed {
  readonly value: unknown;
  readonly issues: FileIssue[];
  lineOf(path: string): number | undefined;
}

function parseText(text: string, format: ConfigFormat): Parsed {
  switch (format) {
    case "json":
      return parseJson(text);
    case "yaml":
      return parseYamlText(text);
    case "properties": {
      const tree = propertiesToTree(parseProperties(text));
      return {
        value: tree.value,
        issues: tree.issues.map((i) => ({ path: i.path, message: i.message, ...lineField(i.line || undefined) })),
        lineOf: (path) => tree.lineOf.get(path),
      };
    }
  }
}

function parseJson(text: string): Parsed {
  try {
    return { value: JSON.parse(text), issues: [], lineOf: () => undefined };
  } catch (err) {
    const message = (err as Error).message;
    const at = /position (\d+)/.exec(message);
    const line = at ? text.slice(0, Number(at[1])).split("\n").length : undefined;
    return { value: undefined, issues: [{ path: "", message: `not valid JSON: ${message}`, ...lineField(line) }], lineOf: () => undefined };
  }
}

function parseYamlText(text: string): Parsed {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      issues: doc.errors.map((e) => ({ path: "", message: `not valid YAML: ${e.message.split("\n")[0]}`, line: lineAt(e.pos[0]) })),
      lineOf: () => undefined,
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { value: undefined, issues: [{ path: "", message: `cannot read YAML: ${(err as Error).message}` }], lineOf: () => undefined };
  }
  return {
    value: value ?? {},
    issues: [],
    lineOf(path) {
      let segments: PathSegment[];
      try {
        segments = path === "" ? [] : parsePath(path);
      } catch {
        return undefined;
      }
      // The deepest node that exists: an unknown or misplaced key still points near its line.
      for (let n = segments.length; n > 0; n--) {
        const node = doc.getIn(segments.slice(0, n), true);
        if (isNode(node) && node.range) return lineAt(node.range[0]);
      }
      return undefined;
    },
  };
}

function lineField(line: number | undefined): { line?: number } {
  return line === undefined ? {} : { line };
}

function dedupe(issues: FileIssue[]): FileIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.line}|${i.path}|${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
