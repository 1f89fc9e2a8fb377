/**
 * The admin console: one web UI for services, config, API docs (try-it over
 * gRPC and through the gateway), traffic rules and gateway policies,
 * transactions, traces and the audit log, served by `protomesh console` or
 * from code.
 *
 * ```ts
 * import { startConsole } from "protomesh/console";
 * const console = await startConsole({ endpoints: ["127.0.0.1:2379"], port: 0 });
 * console.log(console.url);
 * ```
 *
 * End-user API first; the extension API (page modules, users, audit log) follows.
 */
export { startConsole, DEFAULT_CONSOLE_PORT, type ConsoleOptions, type RunningConsole, type ConsoleContext } from "./console";
export { consoleCommand } from "./console-command";

// Extension API
export type { ConsoleModule, Route, RouteContext, Actor, Method } from "./server/route";
export { HttpError } from "./server/http-error";
export { UserStore, type ConsoleUser } from "./auth/users";
export { hashPassword, verifyPassword } from "./auth/password";
export type { Role } from "./auth/roles";
export { AuditLog, type AuditEntry, type AuditInput } from "./audit/audit-log";
export { callTree, stagesOf, type TreeRow } from "./traces/call-tree";
export { decodeOtlpJson } from "./traces/otlp-json";
export { decodeOtlpProtobuf } from "./traces/otlp-protobuf";
export type { TraceSpan, TraceSummary, TraceQuery, TraceSource } from "./traces/span";
export { DRAINING_METADATA } from "../runtime/balancing/instances";
export { METRICS_METADATA } from "./traces/red-metrics";
