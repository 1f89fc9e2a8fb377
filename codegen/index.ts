/**
 * protomesh's code generator: the `protomesh` command line, the
 * `protoc-gen-protomesh` plugin and the pieces they are built from.
 */
export { main } from "./cli";
export { generate, type GenerateOptions, type GenerateResult } from "./generate";
export { protomeshPlugin } from "./plugin";
export { renderServiceFile, outputPath, type RenderInput } from "./render";
export { methodLocalName, messageTsName } from "./names";
export { ExitCode, CliError, UsageError, type CliIo, type Command } from "./command";
