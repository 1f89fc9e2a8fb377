import type { IncomingMessage } from "node:http";
import type * as grpc from "@grpc/grpc-js";
import { compileTrafficRule, TrafficPlan, type CompiledRule, type TrafficRule } from "../runtime/balancing";
import type { InstanceInfo } from "../runtime/balancing/instances";
import type { Discovery } from "../registry/registry";
import { Status } from "../runtime/errors";
import type { Logger } from "../runtime/logger";
import { cookieValue } from "./headers";
import { UpstreamFailure } from "./http-errors";
import type { Upstreams } from "./upstreams";

/**
 * Canary, A/B and blue-green at the gateway: the policy's `traffic` section
 * holds, per registry service, a traffic rule of the shared model
 * (`runtime/balancing`), evaluated on each HTTP request with its headers,
 * cookies (`cookie.<name>`) and JWT claims (`jwt.<claim>`) as attributes. The
 * chosen instances are dialled as one channel per instance set (balanced
 * round-robin inside grpc-js), so a decision costs a rule evaluation and a
 * map lookup. Services without a rule use their `etcd:///` channel as is.
 */

interface Watched {
  instances: InstanceInfo[];
  stop(): void;
  plan: TrafficPlan<InstanceInfo> | undefined;
  rule: CompiledRule | undefined;
}

export interface TrafficRequest {
  readonly req: IncomingMessage;
  readonly grpcPath: string;
  readonly claims: Record<string, unknown> | undefined;
  /** The request's id: the detail of a 503 when no instance can serve it, and in the log line that says why. */
  readonly requestId: string;
}

export class TrafficRouter {
  private readonly watched = new Map<string, Watched>();
  private compiled = new Map<string, CompiledRule>();
  private source: Readonly<Record<string, TrafficRule>> | undefined;

  constructor(
    private readonly discovery: Discovery | undefined,
    private readonly upstreams: Upstreams,
    private readonly logger: Logger,
    private readonly zone?: string,
  ) {}

  /** Takes the rules of a new policy (already validated). */
  setRules(rules: Readonly<Record<string, TrafficRule>> | undefined): void {
    if (rules === this.source) return;
    this.source = rules;
    const next = new Map<string, CompiledRule>();
    for (const [name, rule] of Object.entries(rules ?? {})) next.set(name, compileTrafficRule(rule));
    this.compiled = next;
    for (const [name, w] of this.watched) {
      w.rule = next.get(name);
      w.plan = w.rule ? new TrafficPlan(w.rule, w.instances, { zone: this.zone }) : undefined;
      if (!w.rule) {
        w.stop();
        this.watched.delete(name);
      }
    }
  }

  /** The target's own channel when no traffic rule can apply to it (no request attributes needed); otherwise undefined. */
  direct(target: string): grpc.Client | undefined {
    if (this.compiled.size === 0 || !this.discovery || !target.startsWith("etcd:///") || !this.compiled.has(target.slice(8))) return this.upstreams.client(target);
    return undefined;
  }

  /** The channel for this request: the service's own, or one over the instances the rule picks. */
  client(target: string, request: TrafficRequest, setHeader: (name: string, value: string) => void): grpc.Client {
    const name = target.startsWith("etcd:///") ? target.slice(8) : undefined;
    const rule = name === undefined ? undefined : this.compiled.get(name);
    if (!rule || !this.discovery || name === undefined) return this.upstreams.client(target);
    const w = this.watch(name, rule);
    if (!w.plan) return this.upstreams.client(target);
    const d = w.plan.decide({
      method: request.grpcPath,
      header: (h) => first(request.req.headers[h]),
      attribute: (a) => attributeOf(a, request),
    });
    if (d.route !== undefined) setHeader("x-protomesh-route", d.route);
    if (d.status === "unavailable" || d.instances.length === 0) {
      // The service, subset and reason are the mesh's own: they go to the log, the caller gets the request id.
      this.logger.warn("gateway traffic: no upstream instance for the request", { requestId: request.requestId, service: name, route: d.route, subset: d.subset, reason: d.message ?? "no instance" });
      throw new UpstreamFailure(Status.UNAVAILABLE, "no upstream instance for this request", { requestId: request.requestId });
    }
    setHeader("x-protomesh-subset", d.served);
    return this.upstreams.client(addressTarget(d.instances.map((i) => i.address)));
  }

  private watch(name: string, rule: CompiledRule): Watched {
    let w = this.watched.get(name);
    if (w) return w;
    const entry: Watched = { instances: [], plan: undefined, rule, stop: () => undefined };
    const handle = this.discovery!.watch(
      name,
      (update) => {
        entry.instances = [...update.instances];
        entry.plan = entry.rule ? new TrafficPlan(entry.rule, entry.instances, { zone: this.zone }) : undefined;
      },
      (err) => this.logger.warn("gateway traffic: cannot list instances", { service: name, err: err.message }),
    );
    entry.stop = () => handle.stop();
    this.watched.set(name, entry);
    w = entry;
    return w;
  }

  close(): void {
    for (const w of this.watched.values()) w.stop();
    this.watched.clear();
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function attributeOf(name: string, request: TrafficRequest): string | undefined {
  if (name.startsWith("cookie.")) {
    const wanted = name.slice(7);
    for (const part of String(request.req.headers.cookie ?? "").split(";")) {
      const eq = part.indexOf("=");
      // A value that cannot be decoded is treated as absent (no rule matches on it).
      if (eq !== -1 && part.slice(0, eq).trim() === wanted) return cookieValue(part.slice(eq + 1).trim());
    }
    return undefined;
  }
  if (name.startsWith("jwt.")) {
    const v = request.claims?.[name.slice(4)];
    return v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v);
  }
  return undefined;
}

/** A grpc-js target listing the addresses (the channel balances over them round-robin). */
export function addressTarget(addresses: readonly string[]): string {
  const sorted = [...addresses].sort();
  const v6 = sorted.some((a) => a.startsWith("["));
  return `${v6 ? "ipv6" : "ipv4"}:${sorted.join(",")}`;
}
