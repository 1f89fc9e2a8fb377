/**
 * "Try it" calls from the API page: JSON in, a real gRPC call through the
 * registry (`etcd:///<service>`, balanced like any client) or to one
 * registered instance's address, JSON out. Only registered targets are
 * accepted, so the console cannot be used to reach arbitrary hosts.
 */
import type { JsonValue, Registry } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Discovery } from "../../registry/registry";
import { DISCOVERY_OPTION } from "../../registry/registry";
import { findMethod } from "../../explorer/lookup";
import { dynamicCall } from "../../runtime/dynamic-call";
import { codeName, RpcError, Status } from "../../runtime/errors";
import type { ServiceIndex } from "../services/service-index";

export type CallResult = { ok: true; responses: JsonValue[] } | { ok: false; code: number; codeName: string; message: string; details?: unknown };

const MAX_RESPONSES = 1000;
const DEFAULT_DEADLINE_MS = 15_000;

export class TryCalls {
  private readonly channels = new Map<string, grpc.Client>();

  constructor(
    private readonly index: ServiceIndex,
    private readonly discovery: Discovery,
  ) {}

  async call(registry: Registry, body: Record<string, unknown>, fallbackTarget: string): Promise<CallResult> {
    try {
      if (typeof body.method !== "string") throw new RpcError(Status.INVALID_ARGUMENT, "method must be a string");
      if (body.requests !== undefined && !Array.isArray(body.requests)) throw new RpcError(Status.INVALID_ARGUMENT, "requests must be an array");
      const target = (typeof body.target === "string" ? body.target.trim() : "") || fallbackTarget;
      const method = findMethod(registry, body.method);
      const metadata = new grpc.Metadata();
      if (typeof body.metadata === "object" && body.metadata !== null) {
        for (const [k, v] of Object.entries(body.metadata as Record<string, unknown>)) metadata.add(k, String(v));
      }
      const deadlineMs = typeof body.deadlineMs === "number" && body.deadlineMs > 0 ? Math.min(body.deadlineMs, 120_000) : DEFAULT_DEADLINE_MS;
      const responses: JsonValue[] = [];
      for await (const r of dynamicCall(this.channel(target), method, (body.requests as JsonValue[] | undefined) ?? [], { metadata, deadline: Date.now() + deadlineMs, registry })) {
        responses.push(r);
        if (responses.length >= MAX_RESPONSES) break;
      }
      return { ok: true, responses };
    } catch (err) {
      const e = err instanceof RpcError ? err : RpcError.from(err, Status.UNKNOWN);
      return { ok: false, code: e.code, codeName: codeName(e.code), message: e.rawMessage, ...(e.details === undefined ? {} : { details: e.details }) };
    }
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }

  private channel(target: string): grpc.Client {
    this.checkTarget(target);
    let channel = this.channels.get(target);
    if (!channel) {
      channel = new grpc.Client(target, grpc.credentials.createInsecure(), { [DISCOVERY_OPTION]: this.discovery });
      this.channels.set(target, channel);
    }
    return channel;
  }

  private checkTarget(target: string): void {
    const m = /^etcd:\/\/\/(.+)$/.exec(target);
    if (m) {
      if (this.index.summaries().some((s) => s.name === m[1] && s.instances > 0)) return;
      throw new RpcError(Status.FAILED_PRECONDITION, `no instance of ${m[1]} is registered`);
    }
    if (this.index.instances({ limit: 1000, q: target }).items.some((r) => r.address === target)) return;
    throw new RpcError(Status.PERMISSION_DENIED, `the console calls only registered services: use etcd:///<service> or a registered instance's host:port, not ${JSON.stringify(target)}`);
  }
}

export { codeName };
