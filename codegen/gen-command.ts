import * as path from "node:path";
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../cli/command";
import { BufError, generate } from "./generate";
import { GENERATOR_PACKAGES, requireToolchain } from "./toolchain";

const USAGE = `usage: protomesh gen [--root DIR] [--out DIR] [--template FILE]

Generates TypeScript from the project's .proto files through buf: ts-proto
messages and grpc-js services, plus protomesh's typed handlers, clients and
embedded descriptors (<name>_protomesh.ts).

The project's buf.yaml and buf.gen.yaml are used when present. Without
buf.yaml the module is proto/ (or the root when there is no proto/); without
buf.gen.yaml, ts-proto (outputServices=grpc-js,esModuleInterop=true,env=node,
importSuffix=.js) and protoc-gen-protomesh (import_extension=js) write to gen/,
which is replaced on each run. Relative imports end in .js: ESM with
moduleResolution nodenext needs that; CommonJS, bundlers and tsx accept it.
Without buf.yaml, protos that import google/api/... (google.api.http
annotations) compile against node_modules/google-proto-files (npm install -D
google-proto-files); only what they import is generated from it.

options:
  --root DIR        project root (default: the current directory)
  --out DIR         write every plugin's output to DIR instead of the template's out
  --template FILE   generation template to use instead of <root>/buf.gen.yaml
  -h, --help        show this help

Output directories change only when generation succeeds.
`;

/** `protomesh gen`. */
export const genCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let values: { root?: string; out?: string; template?: string; help?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          root: { type: "string" },
          out: { type: "string" },
          template: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: false,
      }));
      for (const name of ["root", "out", "template"] as const) {
        if (values[name] === "") throw new UsageError(`--${name} needs a value`);
      }
    } catch (err) {
      return printUsageError(io, "gen", err instanceof Error ? err.message : String(err));
    }
    if (values.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }

    const started = performance.now();
    const root = path.resolve(io.cwd, values.root ?? ".");
    try {
      // PROTOMESH_BUF names a buf binary of the user's own; the plugins are still needed.
      requireToolchain("protomesh gen", io.env.PROTOMESH_BUF ? GENERATOR_PACKAGES.filter((p) => p !== "@bufbuild/buf") : GENERATOR_PACKAGES);
      const result = await generate({
        root,
        out: values.out === undefined ? undefined : path.resolve(io.cwd, values.out),
        template: values.template === undefined ? undefined : path.resolve(io.cwd, values.template),
        env: io.env,
      });
      if (result.warnings.trim() !== "") io.err(result.warnings.endsWith("\n") ? result.warnings : `${result.warnings}\n`);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const where = result.outs.map((o) => `${displayPath(io.cwd, o)}/`).join(", ");
      io.out(`protomesh gen: ${result.files} ${result.files === 1 ? "file" : "files"} → ${where} (${seconds} s)\n`);
      return ExitCode.ok;
    } catch (err) {
      if (err instanceof BufError) {
        io.err(`${err.message}\nprotomesh gen: failed; output left unchanged\n`);
        return ExitCode.failure;
      }
      if (err instanceof CliError) {
        io.err(`protomesh gen: ${err.message}\n`);
        return ExitCode.failure;
      }
      throw err;
    }
  },
};

function displayPath(cwd: string, target: string): string {
  const rel = path.relative(cwd, target);
  return rel === "" ? "." : rel.startsWith("..") || path.isAbsolute(rel) ? target : rel;
}
