/**
 * Calls a branch: a unary protomesh method known by target and path, with the request already
 * encoded. One channel per target (balanced and discovered like any protomesh client); the
 * response is not decoded — a branch's answer is its status code.
 */
import * as grpc from "@grpc/grpc-js";
import { context, propagation, trace, SpanKind, SpanStatusCode, type Span } from "@opentelemetry/api";
import { createClient } from "../../runtime/client";
import type { ServiceDefinition } from "../../runtime/definition";
import { Status } from "../../runtime/errors";
import { metadataSetter } from "../../runtime/tracing-interceptor";
import { branchMetadata, type BranchCall } from "../barrier/call-info";

/** What a branch answered. `code` 0 is success. */
export interface BranchAnswer {
  readonly code: number;
  readonly message: string;
}

/** How the coordinator reads a branch's answer. */
export type Verdict = "success" | "failure" | "retry";

/**
 * OK succeeded; ABORTED is the participant's "failed, roll back" (for a Try or an action);
 * UNIMPLEMENTED and INVALID_ARGUMENT can never succeed on retry. Everything else — UNAVAILABLE,
 * DEADLINE_EXCEEDED, FAILED_PRECONDITION ("not yet"), INTERNAL — is retried.
 */
export function verdictOf(code: number): Verdict {
  if (code === Status.OK) return "success";
  if (code === Status.ABORTED || code === Status.UNIMPLEMENTED || code === Status.INVALID_ARGUMENT) return "failure";
  return "retry";
}

const EMPTY: ServiceDefinition = { typeName: "protomesh.transaction.Branch", file: "", methods: {}, descriptors: [] };
const identity = (b: Buffer) => b;

export interface BranchCallerOptions {
  /** Passed to `etcd:///` targets as their discovery source. */
  discovery?: unknown;
  credentials?: grpc.ChannelCredentials;
  /** Largest answer read (default 4 MiB); a bigger one is a retryable error. */
  maxReceiveMessageBytes?: number;
}

export class BranchCaller {
  private readonly channels = new Map<string, grpc.Client>();

  constructor(private readonly options: BranchCallerOptions = {}) {}

  /** Calls `method` on `target`, within `timeoutMs`, as part of the trace in `traceparent`. */
  call(target: string, method: string, payload: Uint8Array, call: BranchCall, timeoutMs: number, traceparent: string): Promise<BranchAnswer> {
    let client: grpc.Client;
    try {
      client = this.client(target);
    } catch (err) {
      return Promise.resolve({ code: Status.INVALID_ARGUMENT, message: `bad target "${target}": ${(err as Error).message}` });
    }
    const md = branchMetadata(call);
    const span = startSpan(call, method, traceparent, md);
    return new Promise((resolve) => {
      client.makeUnaryRequest(method, identity, identity, Buffer.from(payload), md, { deadline: Date.now() + timeoutMs }, (err) => {
        const answer = err ? { code: err.code ?? Status.UNKNOWN, message: err.details || err.message } : { code: Status.OK, message: "" };
        endSpan(span, answer);
        resolve(answer);
      });
    });
  }

  private client(target: string): grpc.Client {
    let c = this.channels.get(target);
    if (!c) {
      c = createClient(EMPTY, target, {
        discovery: this.options.discovery,
        credentials: this.options.credentials,
        maxReceiveMessageBytes: this.options.maxReceiveMessageBytes,
        tracing: false,
        metrics: false,
      }).$grpc;
      this.channels.set(target, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }
}

const tracer = () => trace.getTracer("protomesh-transaction");

/** A client span for the branch call, child of the transaction's trace; its context goes out in `md`. */
function startSpan(call: BranchCall, method: string, traceparent: string, md: grpc.Metadata): Span {
  const parent = traceparent ? propagation.extract(context.active(), { traceparent }) : context.active();
  const span = tracer().startSpan(`tx ${call.op} ${method.slice(1)}`, { kind: SpanKind.CLIENT, attributes: { "tx.gid": call.gid, "tx.branch": call.branchId, "tx.op": call.op, "rpc.system": "grpc" } }, parent);
  const ctx = trace.setSpan(parent, span);
  propagation.inject(ctx, md, metadataSetter);
  // Without an SDK the span is a no-op and injects nothing: pass the caller's trace on as is.
  if (traceparent && md.get("traceparent").length === 0) md.set("traceparent", traceparent);
  return span;
}

function endSpan(span: Span, answer: BranchAnswer): void {
  span.setAttribute("rpc.grpc.status_code", answer.code);
  if (answer.code !== Status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: answer.message });
  span.end();
}
