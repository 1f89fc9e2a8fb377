import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fromBinary, createFileRegistry, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { loadTemplate, loadWorkspace, workspaceArgs, type Workspace } from "../codegen/buf-config";
import { findBuf, runBuf } from "../codegen/buf-runner";
import { CliError } from "../cli/command";

/** The project's compiled `.proto` files. */
export interface ProjectDescriptors {
  /** Every file, imports (well-known types, dependencies) included, with source comments. */
  readonly registry: FileRegistry;
  /** Names of the project's own files, the ones to document (`shop/v1/orders.proto`). */
  readonly projectFiles: readonly string[];
}

/**
 * Compiles the project's protos with buf, the way `protomesh gen` finds them
 * (`buf.yaml`, else `proto/`, else the root), into a descriptor set with
 * imports and source info.
 */
export async function buildDescriptors(root: string, env: NodeJS.ProcessEnv): Promise<ProjectDescriptors> {
  const workspace = loadWorkspace(root, generatedDirs(root));
  const projectFiles = protoFiles(workspace);
  if (projectFiles.length === 0) throw new CliError(`no .proto files found under ${root}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-docs-"));
  try {
    const image = path.join(scratch, "image.binpb");
    const args = ["build", "-o", image, "--as-file-descriptor-set", ...workspaceArgs(workspace)];
    const result = await runBuf(findBuf(env), args, root, env);
    if (result.code !== 0) {
      const hint = workspace.importHint !== undefined && /imported file does not exist/.test(result.stderr) ? `\n${workspace.importHint}` : "";
      throw new CliError(`buf build failed:\n${(result.stderr || result.stdout).trimEnd()}${hint}`);
    }
    const set = fromBinary(FileDescriptorSetSchema, fs.readFileSync(image));
    return { registry: createFileRegistry(set), projectFiles };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Where `protomesh gen` writes, so generated trees are not taken for sources; a broken template only costs that. */
function generatedDirs(root: string): string[] {
  try {
    return loadTemplate(root, undefined).outs.map((o) => path.resolve(root, o));
  } catch {
    return [path.join(root, "gen")];
  }
}

/** `.proto` files of the workspace, named relative to their module (as the compiler names them). */
function protoFiles(workspace: Workspace): string[] {
  const out = new Set<string>();
  for (const module of workspace.modules) {
    const excludes = new Set(module.excludes);
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (excludes.has(full)) continue;
        if (entry.isDirectory()) {
          if (entry.name !== "node_modules" && !entry.name.startsWith(".")) walk(full);
        } else if (entry.name.endsWith(".proto")) {
          out.add(path.relative(module.dir, full).split(path.sep).join("/"));
        }
      }
    };
    walk(module.dir);
  }
  return [...out].sort();
}
