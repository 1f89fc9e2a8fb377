/**
 * Releasing and running a service: health probes, canary and blue-green releases driven by
 * metric analysis, and the `protomesh new` scaffold.
 */
export { probe, ProbeExit, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, type ProbeOptions, type ProbeResult, type ProbeTls, type ProbeExitCode } from "./health/probe";
export { probeService, formatTable, type InstanceHealth, type ServiceHealth } from "./health/probe-service";
export { parseDuration, formatDuration } from "./duration";
