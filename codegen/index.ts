/**
 * protomesh's code generator: `protomesh gen`, the
 * `protoc-gen-protomesh` plugin and the pieces they are built from.
 */
export { ExitCode, CliError, UsageError, type CliIo, type Command } from "../cli/command";
export { generate, type GenerateOptions, type GenerateResult } from "./generate";
export { protomeshPlugin } from "./plugin";
export { renderServiceFile, outputPath, type RenderInput } from "./render";
export { methodLocalName, messageTsName } from "./names";
