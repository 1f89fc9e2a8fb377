/**
 * What the console asks an instance directly when an operator opens it: its
 * gRPC health (`grpc.health.v1.Health/Check`, overall status) and the time
 * left on its registry lease. Both with short deadlines; a dead instance
 * answers "unreachable", never hangs the page.
 */
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Etcd3 } from "etcd3";
import { deadlineIn } from "../../registry/etcd/options";
import { healthMessages, SERVING_STATUS } from "../../runtime/health-proto";

export interface ProbeResult {
  /** SERVING, NOT_SERVING, … or `unreachable: <why>`. */
  readonly health: string;
  /** Seconds left on the lease; -1 when it is gone; undefined without a lease. */
  readonly leaseTtl?: number;
  readonly leaseGrantedTtl?: number;
}

const PROBE_DEADLINE_MS = 1500;

export async function probeInstance(client: Etcd3, address: string, lease: string, callTimeoutMs: number): Promise<ProbeResult> {
  const [health, ttl] = await Promise.all([checkHealth(address), lease !== "0" ? leaseTtl(client, lease, callTimeoutMs) : Promise.resolve(undefined)]);
  return { health, ...(ttl ? { leaseTtl: ttl.ttl, leaseGrantedTtl: ttl.granted } : {}) };
}

function checkHealth(address: string): Promise<string> {
  const { request, response } = healthMessages();
  const channel = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve) => {
    channel.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (value: string) => Buffer.from(toBinary(request, create(request, { service: value } as never))),
      (bytes: Buffer) => {
        const msg = fromBinary(response, bytes) as unknown as { status?: number };
        return SERVING_STATUS[msg.status ?? 0] ?? `STATUS_${msg.status}`;
      },
      "",
      { deadline: Date.now() + PROBE_DEADLINE_MS },
      (err, value) => resolve(err ? `unreachable: ${err.details || err.message}` : (value ?? "UNKNOWN")),
    );
  }).finally(() => channel.close());
}

async function leaseTtl(client: Etcd3, lease: string, callTimeoutMs: number): Promise<{ ttl: number; granted: number } | undefined> {
  try {
    const res = await client.leaseClient.leaseTimeToLive({ ID: lease, keys: false }, deadlineIn(callTimeoutMs));
    return { ttl: Number(res.TTL), granted: Number(res.grantedTTL) };
  } catch {
    return undefined;
  }
}
