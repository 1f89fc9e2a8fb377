/**
 * How the CLI finds a config's schema: the message type from `--schema` (or
 * the type recorded with the latest version), its descriptors from a
 * `FileDescriptorSet` file (`--descriptor-set`) or, by default, from the
 * project's `.proto` files compiled with buf (`--protos DIR`, default `.`),
 * found the way `protomesh gen` finds them: `buf.yaml`'s modules, else `proto/`,
 * else the directory minus `node_modules`, hidden and generated directories.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadTemplate, loadWorkspace, workspaceArgs } from "../../codegen/buf-config";
import { findBuf, runBuf } from "../../codegen/buf-runner";
import { CliError } from "../../cli/command";
import { schemaFromDescriptorSet, type ConfigSchema } from "../definition";
import { ConfigError } from "../errors";

export interface SchemaSource {
  /** Path to a serialized FileDescriptorSet. */
  readonly descriptorSet?: string;
  /** A buf workspace or module directory (or a plain directory of .proto files). */
  readonly protos?: string;
}

export async function loadSchema(typeName: string, source: SchemaSource, cwd: string, env: NodeJS.ProcessEnv): Promise<ConfigSchema> {
  const bytes = source.descriptorSet ? readSet(resolve(cwd, source.descriptorSet)) : await buildSet(resolve(cwd, source.protos ?? "."), env);
  try {
    return schemaFromDescriptorSet(typeName, bytes);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`${err.message}${source.descriptorSet ? "" : ` (protos from ${source.protos ?? "."})`}`);
    throw err;
  }
}

function readSet(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read descriptor set ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

async function buildSet(dir: string, env: NodeJS.ProcessEnv): Promise<Uint8Array> {
  if (!existsSync(dir)) throw new CliError(`proto directory ${dir} does not exist (pass --protos DIR or --descriptor-set FILE)`);
  const args = ["build", "--as-file-descriptor-set"];
  if (!existsSync(join(dir, "buf.work.yaml"))) {
    // Never `node_modules`: packages ship .proto files of their own that do not compile together.
    const workspace = loadWorkspace(dir, generatedDirs(dir));
    args.push(...workspaceArgs(workspace));
  }
  const temp = mkdtempSync(join(tmpdir(), "protomesh-config-"));
  const out = join(temp, "set.binpb");
  try {
    const result = await runBuf(findBuf(env), [...args, "-o", out], dir, env);
    if (result.code !== 0) throw new CliError(`buf build failed in ${dir}:\n${result.stderr.trim()}`);
    return readFileSync(out);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Where `protomesh gen` writes, so generated trees are not taken for sources. */
function generatedDirs(root: string): string[] {
  try {
    return loadTemplate(root, undefined).outs.map((o) => resolve(root, o));
  } catch {
    return [join(root, "gen")];
  }
}
