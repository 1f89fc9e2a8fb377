import * as fs from "node:fs";
import * as path from "node:path";
import { countProtos, loadTemplate, loadWorkspace, redirectOuts, workspaceArgs } from "./buf-config";
import { findBuf, runBuf, writePluginShims } from "./buf-runner";
import { CliError } from "../cli/command";
import { requireDirectoryPath } from "../cli/directories";
import { Staging } from "./staging";

/** What `generate` needs; paths are absolute. */
export interface GenerateOptions {
  /** The project root: where `buf.yaml` / `buf.gen.yaml` are looked for and buf runs. */
  readonly root: string;
  /** Write every plugin's output here instead of the template's `out`s. */
  readonly out?: string;
  /** A generation template to use instead of `<root>/buf.gen.yaml`. */
  readonly template?: string;
  readonly env: NodeJS.ProcessEnv;
}

/** What a successful run produced. */
export interface GenerateResult {
  /** Number of files written. */
  readonly files: number;
  /** The output directories (absolute), in the template's order. */
  readonly outs: readonly string[];
  /** buf's warnings, if it printed any. */
  readonly warnings: string;
}

/** buf rejected the input (a syntax or type error); `message` is buf's own report. */
export class BufError extends CliError {
  override readonly name: string = "BufError";
}

/**
 * Runs buf with the project's template (or the default one) into a staging
 * directory and, only when every plugin succeeded, moves the result into the
 * output directories.
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const { root } = options;
  if (!isDirectory(root)) throw new CliError(`project root ${root} is not a directory`);
  const template = loadTemplate(root, options.template);
  const outs = [...new Set(template.outs.map((o) => path.resolve(root, options.out ?? o)))];
  // A file where an output directory goes would be replaced by it (clean), or stop the install half-way.
  for (const out of outs) requireDirectoryPath(out);
  const buf = findBuf(options.env);
  const staging = Staging.create(outs, root, template.clean);
  try {
    const workspace = loadWorkspace(root, outs);
    const hasInputs = "inputs" in template.data;
    if (!hasInputs && countProtos(workspace, 1) === 0) {
      const where = workspace.modules.map((m) => path.relative(root, m.dir) || ".").join(", ");
      throw new CliError(`no .proto files found in ${where} (under ${root})`);
    }
    const redirected = redirectOuts(template, (o) => staging.stagedPath(path.resolve(root, options.out ?? o)));
    const args = ["generate", "--template", JSON.stringify(redirected)];
    // A template's own `inputs` decide what is generated; --exclude-path would fight them.
    if (hasInputs) {
      if (workspace.configOverride !== undefined) args.push("--config", workspace.configOverride);
    } else {
      args.push(...workspaceArgs(workspace));
    }
    const shims = writePluginShims(staging.scratch("bin"));
    const searchPath = [shims, path.join(root, "node_modules", ".bin"), options.env.PATH ?? ""].join(path.delimiter);
    const result = await runBuf(buf, args, root, { ...options.env, PATH: searchPath });
    if (result.code !== 0) throw new BufError(explain(result.stderr || result.stdout, template.origin, workspace.importHint));
    const files = staging.countFiles();
    staging.install(template.clean);
    return { files, outs, warnings: result.stderr };
  } finally {
    staging.dispose();
  }
}

// buf's report already names file:line:col; only its wording for an empty
// module gets a hint, since that is usually a layout mistake, not a typo.
function explain(report: string, templateOrigin: string, importHint: string | undefined): string {
  const text = report.trimEnd();
  if (importHint !== undefined && /imported file does not exist/.test(text)) return `${text}\n${importHint}`;
  if (/had no \.proto files/.test(text)) return `${text}\nno .proto files found: check the module paths in buf.yaml`;
  if (/plugin .*(not found|executable file not found)/i.test(text)) return `${text}\n(a plugin named in ${templateOrigin} is not installed)`;
  return text;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
