import * as fs from "node:fs";
import * as path from "node:path";
import { CliError } from "../cli/command";

/**
 * Generation writes into a staging directory; only a successful run touches
 * the real output directories. A failed run (a syntax error, a plugin crash)
 * leaves the previous output exactly as it was.
 */
export class Staging {
  /** The output directories that are not inside another one, sorted. */
  readonly tops: readonly string[];

  private constructor(readonly dir: string, tops: string[]) {
    this.tops = tops;
  }

  /**
   * Creates a staging directory beside the first output directory (so moving a
   * tree into place is a rename on the same file system) for the absolute
   * output directories `outs`.
   */
  static create(outs: readonly string[], root: string, clean: boolean): Staging {
    const unique = [...new Set(outs.map((o) => path.resolve(o)))].sort();
    const tops = unique.filter((o) => !unique.some((other) => other !== o && isInside(o, other)));
    if (clean) {
      const unsafe = tops.find((t) => t === root || isInside(root, t));
      if (unsafe) throw new CliError(`refusing to clean ${unsafe}: it contains the project; use an output directory such as gen/, or clean: false`);
    }
    const first = tops[0];
    const parent = first === root || isInside(root, first) ? root : path.dirname(first);
    fs.mkdirSync(parent, { recursive: true });
    return new Staging(fs.mkdtempSync(path.join(parent, ".protomesh-gen-")), tops);
  }

  /** Where buf should write what is meant for the output directory `out`. */
  stagedPath(out: string): string {
    const abs = path.resolve(out);
    const index = this.tops.findIndex((t) => t === abs || isInside(abs, t));
    if (index < 0) throw new Error(`${out} is not one of the staged output directories`);
    return path.join(this.dir, "out", String(index), path.relative(this.tops[index], abs));
  }

  /** A scratch directory inside the staging area (for plugin launchers). */
  scratch(name: string): string {
    return path.join(this.dir, name);
  }

  /** Counts the files generated so far. */
  countFiles(): number {
    return this.tops.reduce((n, _t, i) => n + listFiles(path.join(this.dir, "out", String(i))).length, 0);
  }

  /**
   * Moves the generated trees into place. With `clean`, each output directory is
   * replaced as a whole (its previous content is dropped); otherwise generated
   * files are written over the existing tree and everything else stays. If a
   * replacement fails half-way, the directories already replaced are restored.
   */
  install(clean: boolean): void {
    if (!clean) {
      this.tops.forEach((top, i) => {
        const from = path.join(this.dir, "out", String(i));
        for (const rel of listFiles(from)) {
          fs.mkdirSync(path.dirname(path.join(top, rel)), { recursive: true });
          move(path.join(from, rel), path.join(top, rel));
        }
      });
      return;
    }
    const replaced: { top: string; backup: string | undefined }[] = [];
    try {
      this.tops.forEach((top, i) => {
        const from = path.join(this.dir, "out", String(i));
        if (!fs.existsSync(from)) fs.mkdirSync(from, { recursive: true });
        let backup: string | undefined;
        if (fs.existsSync(top)) {
          backup = path.join(this.dir, "previous", String(i));
          fs.mkdirSync(path.dirname(backup), { recursive: true });
          move(top, backup);
        } else {
          fs.mkdirSync(path.dirname(top), { recursive: true });
        }
        replaced.push({ top, backup });
        move(from, top);
      });
    } catch (err) {
      for (const { top, backup } of replaced.reverse()) {
        if (backup === undefined || fs.existsSync(backup)) fs.rmSync(top, { recursive: true, force: true });
        if (backup !== undefined && fs.existsSync(backup)) move(backup, top);
      }
      throw err;
    }
  }

  /** Removes the staging directory and whatever is left in it. */
  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True when `p` is strictly inside `dir`. */
function isInside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

/** Renames, or copies and deletes when `from` and `to` are on different file systems. */
function move(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    fs.cpSync(from, to, { recursive: true, force: true });
    fs.rmSync(from, { recursive: true, force: true });
  }
}

/** Files under `dir`, as relative paths, sorted. */
function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk("");
  return out.sort();
}
