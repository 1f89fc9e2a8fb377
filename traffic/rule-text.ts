/** Reading a traffic rule from text: JSON or YAML (a YAML parser reads both). */
import { parseDocument } from "yaml";

/** Parses rule text; throws an Error whose message says where the syntax breaks. */
export function parseRuleText(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const where = first.linePos?.[0] ? `line ${first.linePos[0].line}, column ${first.linePos[0].col}` : "";
    throw new Error(`${source}: not valid YAML or JSON${where ? ` (${where})` : ""}: ${first.message.split("\n")[0]}`);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) throw new Error(`${source}: empty: a rule is an object with subsets and routes`);
  return value;
}
