/**
 * Releasing and running a service: health probes, canary and blue-green releases driven by
 * metric analysis, and the `protomesh new` scaffold.
 */
export { probe, ProbeExit, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RPC_TIMEOUT_MS, type ProbeOptions, type ProbeResult, type ProbeTls, type ProbeExitCode } from "./health/probe";
export { probeService, formatTable, type InstanceHealth, type ServiceHealth } from "./health/probe-service";
export { parseDuration, formatDuration } from "../runtime/duration";
export { prometheusTargets, labelName, metricsAddress, type TargetGroup } from "./prometheus/sd-targets";
export { startPrometheusSd, registryInstances, type PrometheusSd, type PrometheusSdOptions } from "./prometheus/sd-server";
export { PrometheusSource, ScrapeSource, selectorOf, type MetricSource, type Sides } from "./analysis/metric-source";
export { DEFAULT_QUERIES, defaultAnalysis, type AnalysisSpec, type PromQueries, type NoDataPolicy, type MetricCheck } from "./analysis/analysis-spec";
