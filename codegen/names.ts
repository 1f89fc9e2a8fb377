import type { DescMessage } from "@bufbuild/protobuf";

/**
 * Names as ts-proto spells them with its default options, so that our generated
 * files point at the symbols ts-proto actually emits.
 */

// Splits an identifier into words the way ts-proto's `camelCaseGrpc` does
// (it delegates to case-anything): a lower-case run, a capitalised word, a
// digit run, or an upper-case run not followed by a lower-case letter
// (`HTTPServer` → `HTTP`, `Server`). Anything else (underscores) separates words.
const WORD = /^[a-z]+|[A-Z][a-z]+|[a-z]+|[0-9]+|[A-Z]+(?![a-z])/g;

/**
 * The name ts-proto's grpc-js output (and ours) uses for an RPC method:
 * `SayHello` → `sayHello`, `GetAPIKey` → `getApiKey`, `list_items` → `listItems`.
 */
export function methodLocalName(protoName: string): string {
  const words = protoName.match(WORD) ?? [];
  return words
    .map((w, i) => (i === 0 ? w.toLowerCase() : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()))
    .join("");
}

/** ts-proto's `snakeToCamel` for type names: `foo_bar` → `fooBar`, `FOO_BAR` → `fooBar`. */
function snakeToCamel(name: string): string {
  if (!name.includes("_")) return name;
  const hasLower = /[a-z]/.test(name);
  return name
    .split("_")
    .map((part, i) => {
      const word = hasLower ? part : part.toLowerCase();
      return i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1);
    })
    .join("");
}

// ts-proto renames messages that would shadow these globals.
const RENAMED_BUILTINS = new Set(["Date", "Function"]);

/**
 * The exported TypeScript name of a message in its ts-proto module:
 * `Outer.Inner` → `Outer_Inner`, a top-level `Date` → `DateMessage`.
 */
export function messageTsName(message: DescMessage): string {
  const chain: string[] = [];
  for (let m: DescMessage | undefined = message; m; m = m.parent) chain.unshift(snakeToCamel(m.name));
  const name = chain.join("_");
  return RENAMED_BUILTINS.has(name) ? `${name}Message` : name;
}

/** Words that cannot be a binding name in a strict-mode module. */
const RESERVED_WORDS = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for " +
    "function if import in instanceof new null return super switch this throw true try typeof var void while with " +
    "implements interface let package private protected public static yield await arguments eval undefined " +
    "NaN Infinity globalThis"
  ).split(" "),
);

/** True when `name` can be declared as a binding in a strict-mode TypeScript module. */
export function isSafeBinding(name: string): boolean {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) && !RESERVED_WORDS.has(name);
}

/** Turns arbitrary text (a file path) into an identifier-ish string: `my-api/v1` → `my_api_v1`. */
export function identifierFrom(text: string): string {
  const id = text.replace(/[^A-Za-z0-9_$]/g, "_");
  return /^[0-9]/.test(id) ? `_${id}` : id;
}
