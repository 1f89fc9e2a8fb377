import * as path from "node:path";
import type { DescFile } from "@bufbuild/protobuf";
import { identifierFrom, isSafeBinding } from "./names";

/** One `import * as alias from "path"` line of a generated file. */
export interface ModuleImport {
  /** The proto file whose ts-proto module is imported (`google/protobuf/empty.proto`). */
  readonly protoFile: string;
  /** Namespace the module is bound to (`google_protobuf_empty`). */
  readonly alias: string;
  /** Relative module specifier (`../../google/protobuf/empty`). */
  readonly specifier: string;
}

/**
 * Chooses a namespace alias and a relative specifier for every ts-proto module a
 * generated file uses. A module beside the generated file is bound to its base
 * name (`greeter`), any other to its whole path (`google_protobuf_empty`). An
 * alias that collides with `taken` (names the file declares or uses) or with an
 * earlier alias gets a numeric suffix. Modules are ordered by proto path, so the
 * result does not depend on the order types were met in.
 */
export function planImports(
  from: DescFile,
  used: Iterable<DescFile>,
  taken: ReadonlySet<string>,
  importExtension = "",
): Map<string, ModuleImport> {
  const fromDir = path.posix.dirname(from.proto.name);
  const files = [...new Set(used)].sort((a, b) => compare(a.proto.name, b.proto.name));
  const inUse = new Set(taken);
  const plan = new Map<string, ModuleImport>();
  for (const file of files) {
    const dir = path.posix.dirname(file.proto.name);
    let base = identifierFrom(dir === fromDir ? path.posix.basename(file.name) : file.name);
    if (!isSafeBinding(base)) base = `${base}_`;
    let alias = base;
    for (let n = 2; inUse.has(alias); n++) alias = `${base}${n}`;
    inUse.add(alias);
    plan.set(file.proto.name, { protoFile: file.proto.name, alias, specifier: specifierFor(fromDir, file.name) + importExtension });
  }
  return plan;
}

/** ts-proto writes `a/b/c.proto` to `a/b/c.ts`; this is the import path from `fromDir` to it. */
function specifierFor(fromDir: string, target: string): string {
  const rel = path.posix.relative(fromDir, target);
  return rel.startsWith("../") ? rel : `./${rel}`;
}

/** Code-unit order, independent of the locale the generator runs in. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
