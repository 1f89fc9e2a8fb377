/**
 * One health check of one address, the way grpc_health_probe makes it: connect within a
 * connect timeout, call `grpc.health.v1.Health/Check` within an RPC timeout, and classify the
 * outcome with its exit codes so Kubernetes exec probes and scripts read it the same way.
 */
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { healthMessages, SERVING_STATUS, type ServingStatus } from "../../runtime/health-proto";
import { messageCodec } from "../../runtime/message-codec";
import { codeName } from "../../runtime/errors";

/** grpc_health_probe's exit codes. */
export const ProbeExit = {
  serving: 0,
  /** Invalid command-line arguments. */
  usage: 1,
  connectFailed: 2,
  rpcFailed: 3,
  notServing: 4,
} as const;
export type ProbeExitCode = (typeof ProbeExit)[keyof typeof ProbeExit];

export interface ProbeTls {
  /** PEM file with the CAs to trust instead of the system roots. */
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  /** Accept any server certificate (insecure). */
  noVerify?: boolean;
  /** The name the server certificate is checked against. */
  serverName?: string;
}

export interface ProbeOptions {
  /** `""` (the default) is the whole server. */
  service?: string;
  connectTimeoutMs?: number;
  rpcTimeoutMs?: number;
  userAgent?: string;
  /** Metadata sent with the check. */
  headers?: ReadonlyArray<readonly [string, string]>;
  tls?: ProbeTls;
}

export interface ProbeResult {
  readonly address: string;
  readonly exit: ProbeExitCode;
  /** The serving status when the RPC answered. */
  readonly status?: ServingStatus;
  /** One line saying what happened, worded like grpc_health_probe's. */
  readonly message: string;
  readonly elapsedMs: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
export const DEFAULT_RPC_TIMEOUT_MS = 1000;

interface CheckResponse {
  status: number;
}

/** Checks `address` (`host:port` or any grpc-js target); never throws for a network outcome. */
export async function probe(address: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const started = performance.now();
  const service = options.service ?? "";
  const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const rpcMs = options.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  const channelOptions: grpc.ChannelOptions = { "grpc.primary_user_agent": options.userAgent ?? "grpc_health_probe" };
  if (options.tls?.serverName) channelOptions["grpc.ssl_target_name_override"] = options.tls.serverName;
  const client = new grpc.Client(address, credentialsFor(options.tls), channelOptions);
  const done = (exit: ProbeExitCode, message: string, status?: ServingStatus): ProbeResult => ({ address, exit, status, message, elapsedMs: performance.now() - started });
  try {
    try {
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + connectMs, (err) => (err ? reject(err) : resolve())));
    } catch {
      return done(ProbeExit.connectFailed, `timeout: failed to connect service ${JSON.stringify(address)} within ${connectMs}ms`);
    }
    const { request, response } = healthMessages();
    const req = messageCodec<{ service: string }>(request);
    const res = messageCodec<CheckResponse>(response);
    const metadata = new grpc.Metadata();
    for (const [k, v] of options.headers ?? []) metadata.add(k, v);
    let answer: CheckResponse;
    try {
      answer = await new Promise<CheckResponse>((resolve, reject) =>
        client.makeUnaryRequest("/grpc.health.v1.Health/Check", req.serialize, res.deserialize, { service }, metadata, { deadline: Date.now() + rpcMs }, (err, value) =>
          err ? reject(err) : resolve(value!),
        ),
      );
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.UNIMPLEMENTED) return done(ProbeExit.rpcFailed, `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${e.details}`);
      if (e.code === grpc.status.DEADLINE_EXCEEDED) return done(ProbeExit.rpcFailed, `timeout: health rpc did not complete within ${rpcMs}ms`);
      return done(ProbeExit.rpcFailed, `error: health rpc failed: ${codeName(e.code)}: ${e.details}`);
    }
    const status = SERVING_STATUS[answer.status] ?? "UNKNOWN";
    if (status !== "SERVING") return done(ProbeExit.notServing, `service unhealthy (responded with ${JSON.stringify(status)})`, status);
    return done(ProbeExit.serving, `status: ${status}`, status);
  } finally {
    client.close();
  }
}

function credentialsFor(tls: ProbeTls | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const read = (path: string | undefined) => (path === undefined ? null : readFileSync(path));
  const verify = tls.noVerify ? { checkServerIdentity: () => undefined, rejectUnauthorized: false } : {};
  return grpc.credentials.createSsl(read(tls.caCert), read(tls.clientKey), read(tls.clientCert), verify);
}
