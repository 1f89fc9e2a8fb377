/**
 * Turns the template tree (`scaffold/templates/`, shipped in the package) into a project's files:
 * `__KEY__` placeholders in paths and contents become the project's names, a leading `_` in a
 * path segment becomes a dot (npm does not pack dotfiles such as `.gitignore`), and the `.tmpl`
 * suffix (which keeps the templates out of protomesh's own compiler and tests) is dropped.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../cli/package-root";
import type { ProjectNames } from "./names";

/** One file of the project: its path relative to the project root, with `/`, and its text. */
export interface ProjectFile {
  readonly path: string;
  readonly text: string;
}

/** Values of the `__KEY__` placeholders. */
export type Placeholders = Readonly<Record<string, string>>;

/** Where the templates are: beside the sources in a checkout, at the package root when installed. */
export function templatesDir(): string {
  return path.join(packageRoot(), "scaffold", "templates");
}

/** The placeholder values of a project. */
export function placeholdersOf(names: ProjectNames, protomeshVersion: string): Placeholders {
  return {
    NAME: names.name,
    PASCAL: names.pascal,
    CAMEL: names.camel,
    SNAKE: names.snake,
    PROTO_PACKAGE: names.protoPackage,
    PROTOMESH_VERSION: protomeshVersion,
  };
}

const PLACEHOLDER = /__([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)__/g;

/** Replaces every `__KEY__`; an unknown key is a broken template, not something to write out. */
export function substitute(text: string, values: Placeholders, where: string): string {
  return text.replace(PLACEHOLDER, (whole, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${where}: unknown placeholder ${whole}`);
    return value;
  });
}

/** A template's path as the project's path: placeholders, `_x` → `.x`, no `.tmpl`. */
export function projectPath(templatePath: string, values: Placeholders): string {
  const segments = templatePath.split("/").map((s) => (s.startsWith("_") && !s.startsWith("__") ? `.${s.slice(1)}` : s));
  return substitute(segments.join("/"), values, templatePath).replace(/\.tmpl$/, "");
}

/** Every template file under `dir`, as paths relative to it with `/`, sorted. */
export function listTemplates(dir: string = templatesDir()): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith(".tmpl")) found.push(child);
    }
  };
  walk("");
  return found.sort();
}

/** Renders every template with `values`. */
export function renderTemplates(values: Placeholders, dir: string = templatesDir()): ProjectFile[] {
  return listTemplates(dir).map((rel) => ({
    path: projectPath(rel, values),
    text: substitute(fs.readFileSync(path.join(dir, rel), "utf8"), values, rel),
  }));
}
