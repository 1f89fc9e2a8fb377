import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, CodeGeneratorResponseSchema, type CodeGeneratorResponse } from "@bufbuild/protobuf/wkt";
import { protomeshPlugin } from "./plugin";

/**
 * Entry point of `protoc-gen-protomesh`: a CodeGeneratorRequest on stdin, a
 * CodeGeneratorResponse on stdout. Unlike protoplugin's own runner, it defaults
 * the target to `ts` (protoplugin would transpile to `js+dts`), so templates need
 * no `opt: target=ts`.
 */
async function main(args: string[]): Promise<number> {
  if (args[0] === "--version" || args[0] === "-v") {
    process.stdout.write(`${protomeshPlugin.name} ${protomeshPlugin.version}\n`);
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(`${protomeshPlugin.name} reads a CodeGeneratorRequest on stdin and writes a CodeGeneratorResponse to stdout; run it through buf or protoc\n`);
    return 2;
  }
  const request = fromBinary(CodeGeneratorRequestSchema, await readAll(process.stdin));
  if (!/(^|,)\s*target=/.test(request.parameter)) {
    request.parameter = request.parameter ? `target=ts,${request.parameter}` : "target=ts";
  }
  // A problem with the input (two methods with one TypeScript name) goes back in
  // the response, as the plugin protocol asks; buf prints it next to the file.
  let response: CodeGeneratorResponse;
  try {
    response = protomeshPlugin.run(request);
  } catch (err) {
    response = create(CodeGeneratorResponseSchema, { error: err instanceof Error ? err.message : String(err) });
  }
  await new Promise<void>((resolve, reject) =>
    process.stdout.write(toBinary(CodeGeneratorResponseSchema, response), (err) => (err ? reject(err) : resolve())),
  );
  return 0;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`${protomeshPlugin.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
