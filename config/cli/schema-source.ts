/**
 * How the CLI finds a config's schema: the message type from `--schema` (or
 * the type recorded with the latest version), its descriptors from a
 * `FileDescriptorSet` file (`--descriptor-set`) or, by default, from the
 * project's `.proto` files compiled with buf (`--protos DIR`, default `.`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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
  const workspace = existsSync(join(dir, "buf.yaml")) || existsSync(join(dir, "buf.work.yaml"));
  const temp = mkdtempSync(join(tmpdir(), "protomesh-config-"));
  const out = join(temp, "set.binpb");
  try {
    const args = ["build", ...(workspace ? [] : ["."]), "--as-file-descriptor-set", "-o", out];
    const result = await runBuf(findBuf(env), args, dir, env);
    if (result.code !== 0) throw new CliError(`buf build failed in ${dir}:\n${result.stderr.trim()}`);
    return readFileSync(out);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
