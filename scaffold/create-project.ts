/**
 * Writes a new project: every file is rendered in memory first (a broken template or a bad name
 * writes nothing), the target directory is checked, then files are written one by one with a
 * line of progress each.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError } from "../cli/command";
import { requireDirectoryPath } from "../cli/directories";
import { projectNames, type ProjectNames } from "./names";
import { projectPackageJson } from "./package-json";
import { placeholdersOf, renderTemplates, type ProjectFile } from "./render";

/** What {@link createProject} is asked to do. */
export interface CreateProjectOptions {
  /** A valid project name (see `nameProblem`). */
  readonly name: string;
  /** Absolute directory to write into. */
  readonly dir: string;
  /** Write into a directory that is not empty, replacing files of the same names. */
  readonly force?: boolean;
  /** protomesh's version, for the README. */
  readonly protomeshVersion: string;
  /** Hears that the directory can take the project, before the first file is written. */
  readonly starting?: () => void;
  /** Hears one line per file written. */
  readonly progress?: (line: string) => void;
}

/** What was written. */
export interface CreatedProject {
  readonly names: ProjectNames;
  readonly dir: string;
  readonly files: readonly string[];
  /** Files that existed and were replaced (only with `force`). */
  readonly replaced: readonly string[];
}

/** Every file of a project called `name`, rendered (nothing is written). */
export function projectFiles(name: string, protomeshVersion: string): ProjectFile[] {
  const names = projectNames(name);
  return [{ path: "package.json", text: projectPackageJson(names) }, ...renderTemplates(placeholdersOf(names, protomeshVersion))].sort((a, b) => a.path.localeCompare(b.path));
}

/** Creates the project; throws {@link CliError} when the directory cannot take it. */
export function createProject(options: CreateProjectOptions): CreatedProject {
  const files = projectFiles(options.name, options.protomeshVersion);
  const { dir } = options;
  checkTarget(dir, options.force === true);
  options.starting?.();
  const replaced: string[] = [];
  for (const file of files) {
    const target = path.join(dir, ...file.path.split("/"));
    let existed = false;
    try {
      const stat = fs.statSync(target);
      if (stat.isDirectory()) throw new CliError(`${target} is a directory; the project needs a file there. Move it away and run again`);
      existed = true;
    } catch (err) {
      if (err instanceof CliError) throw err;
    }
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, file.text);
    } catch (err) {
      throw new CliError(`cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (existed) replaced.push(file.path);
    options.progress?.(`  ${existed ? "replace" : "create "}  ${file.path}`);
  }
  return { names: projectNames(options.name), dir, files: files.map((f) => f.path), replaced };
}

/** The directory must be absent, empty, or (with force) an existing directory. */
function checkTarget(dir: string, force: boolean): void {
  requireDirectoryPath(dir);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new CliError(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (entries.length > 0 && !force) {
    const shown = entries.slice(0, 3).join(", ") + (entries.length > 3 ? ", …" : "");
    throw new CliError(`${dir} is not empty (${shown}). Choose another --dir, or pass --force to write into it (files with the same names are replaced, others are kept)`);
  }
}
