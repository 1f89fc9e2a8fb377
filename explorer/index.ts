/**
 * The explorer: `protomesh ls | describe | call` and the pieces they are built
 * from, for tools that want to talk to services known only through reflection.
 */
export { lsCommand } from "./ls-command";
export { describeCommand } from "./describe-command";
export { callCommand } from "./call-command";
export { ReflectionClient, type ReflectionClientOptions } from "./reflection-client";
export { openTarget, type OpenedTarget } from "./target";
export { findSymbol, findMethod, splitMethodName } from "./lookup";
export { jsonTemplate } from "./json-template";
export { jsonValues } from "./json-values";
