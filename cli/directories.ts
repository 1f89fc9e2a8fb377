/**
 * Output directories named on the command line (`gen --out`, `docs --out`, `new --dir`) are
 * checked before anything is built or written, so that a file in the way reads as such rather
 * than as `EEXIST: file already exists, mkdir …` or `ENOTDIR` from deep inside a write.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError } from "./command";

/**
 * Throws a {@link CliError} when `dir` (absolute), or the nearest of its ancestors that exists,
 * is not a directory: what would make `mkdir -p dir` fail. A directory, or a path that can be
 * made one, passes; other problems (permissions) are left to the write itself to report.
 */
export function requireDirectoryPath(dir: string): void {
  const blocker = notADirectory(dir);
  if (blocker === undefined) return;
  const where = blocker.path === path.resolve(dir) ? "" : `cannot create ${dir}: `;
  throw new CliError(`${where}${blocker.path} is ${blocker.isFile ? "a file, not a directory" : "not a directory"}`);
}

/** The nearest existing one of `dir` and its ancestors, when it is not a directory. */
function notADirectory(dir: string): { path: string; isFile: boolean } | undefined {
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Absent (ENOENT), or below a file (ENOTDIR): look further up.
      if ((code === "ENOENT" || code === "ENOTDIR") && path.dirname(p) !== p) continue;
      return undefined;
    }
    return stat.isDirectory() ? undefined : { path: p, isFile: stat.isFile() };
  }
}
