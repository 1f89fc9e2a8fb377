import { getComments } from "@bufbuild/protoplugin";
import type { DescMethod, DescService } from "@bufbuild/protobuf";

/**
 * A TSDoc block built from the proto comments of a service or method, with
 * `@deprecated` when the proto marks it so. Returns no lines when there is
 * nothing to say.
 */
export function tsDoc(desc: DescService | DescMethod, indent: string): string[] {
  const comments = getComments(desc);
  const paragraphs = [comments.leading, comments.trailing]
    .filter((c): c is string => c !== undefined && c.trim() !== "")
    .map(commentLines);
  const lines = paragraphs.flatMap((p, i) => (i === 0 ? p : ["", ...p]));
  if (desc.deprecated) lines.push(...(lines.length > 0 ? ["", "@deprecated"] : ["@deprecated"]));
  if (lines.length === 0) return [];
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => (l === "" ? `${indent} *` : `${indent} * ${l}`)), `${indent} */`];
}

// `// text` reaches us as " text": drop the single space protoc leaves after the
// comment marker, keep deeper indentation (code samples), and make sure the
// text cannot end the comment block early.
function commentLines(comment: string): string[] {
  const lines = comment.replace(/\s+$/, "").split("\n");
  while (lines.length > 0 && lines[0].trim() === "") lines.shift();
  return lines.map((l) => l.replace(/^ /, "").replace(/\s+$/, "").replace(/\*\//g, "*\\/"));
}
