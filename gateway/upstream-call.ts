import type { IncomingMessage, ServerResponse } from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { Metadata } from "@grpc/grpc-js";
import { dynamicCall, startUnaryCall, type UnaryCall } from "../runtime/dynamic-call";
import { codeName, RpcError, Status } from "../runtime/errors";
import type { Logger } from "../runtime/logger";
import { metadataInto, metadataToHeaders } from "./headers";
import { GatewayError, UpstreamFailure } from "./http-errors";
import { endUpstreamSpan, injectTrace, startUpstreamSpan, type RequestSpan } from "./observe";
import type { RoutePolicy } from "./policy";
import { pickResponseBody } from "./response-body";
import { retryableRoute, withRetries } from "./retry";
import type { BoundRoute } from "./route-table";
import { streamResponses } from "./stream-response";

/**
 * The upstream call of one HTTP request, once it has been admitted and its
 * messages built: attempts (with the route's retries), one client span per
 * attempt when tracing, response metadata as headers, cancellation when the
 * client goes away, and the answer written as JSON (or streamed).
 */

export interface UpstreamCall {
  readonly client: grpc.Client;
  readonly route: BoundRoute;
  readonly policy: RoutePolicy;
  readonly res: ServerResponse;
  readonly md: Metadata;
  /** Absolute deadline (ms since the epoch). */
  readonly deadline: number;
  /** The request's span; undefined when no tracer provider is registered. */
  readonly rs: RequestSpan | undefined;
  /** Prefix of the headers that carry response metadata. */
  readonly headerPrefix: string;
  /**
   * The request id, returned as `x-request-id`. The unary fast path writes it with the rest of
   * the head in one `writeHead`; the other paths set it on the response when they start.
   */
  readonly requestId: string;
  /** Where a failure of the channel or transport is logged (with the request id) before the caller gets a generic one. */
  readonly logger: Logger;
}

/** What the caller is told in place of a failure the channel or transport made (see {@link fromUpstream}). */
const GENERIC: Partial<Record<number, string>> = {
  [Status.UNAVAILABLE]: "upstream unavailable",
  [Status.DEADLINE_EXCEEDED]: "upstream deadline exceeded",
};

/** grpc-js's deadline timer and the wall clock may disagree by a little. */
const DEADLINE_SLACK_MS = 20;

/**
 * The error the caller gets for a failed upstream call. A status the upstream *service* sent
 * (code, message, details of its choosing) is passed on as it is. One that grpc-js made itself
 * (no connection, the deadline passed, the stream was reset) names internal addresses
 * ("connect ECONNREFUSED 10.0.0.7:50051", "remote_addr=…"): it is logged with the request id,
 * and the caller gets the same code with a generic message and the request id as its detail.
 *
 * Telling them apart: a server's status arrives either as a Trailers-Only response, whose
 * `content-type` the gRPC HTTP/2 protocol requires (grpc-js keeps it in the status metadata,
 * and never puts one in a status it makes), or after the server's response headers (`headerSeen`).
 * After the headers only a deadline that has passed (ours, so grpc-js's timer) counts as the
 * channel's. The gateway's own errors (refusals, a request that does not encode, the client
 * going away) are not upstream failures and pass as they are.
 */
export function fromUpstream(err: unknown, c: UpstreamCall, headerSeen: boolean): unknown {
  if (!(err instanceof RpcError) || err instanceof GatewayError || err instanceof UpstreamFailure) return err;
  if (err.code === Status.CANCELLED || err.code === Status.INVALID_ARGUMENT) return err;
  if (err.metadata.get("content-type").length > 0) return err;
  if (headerSeen && !(err.code === Status.DEADLINE_EXCEEDED && Date.now() >= c.deadline - DEADLINE_SLACK_MS)) return err;
  c.logger.warn("gateway: upstream call failed", { requestId: c.requestId, grpc: c.route.grpcPath, code: codeName(err.code), err: err.rawMessage });
  return new UpstreamFailure(err.code, GENERIC[err.code] ?? "upstream call failed", { requestId: c.requestId }, { cause: err });
}

/** The upstream span records what grpc-js said: it stays inside, with the log. */
function spanError(err: unknown): unknown {
  return err instanceof UpstreamFailure ? err.cause : err;
}

/** The responses of a streaming call, a failure of the call mapped by {@link fromUpstream}. */
async function* mapFailures(responses: AsyncIterable<JsonValue>, c: UpstreamCall, headerSeen: () => boolean): AsyncGenerator<JsonValue> {
  try {
    yield* responses;
  } catch (err) {
    throw fromUpstream(err, c, headerSeen());
  }
}

/**
 * A unary call: grpc-js's callback API under one promise, cancelled directly when the client
 * goes away. Without retries or a span (the common case) one small object carries the
 * exchange; an AbortController is made only when retries may have to be interrupted.
 */
export function callUnary(c: UpstreamCall, request: JsonValue): Promise<number> {
  const retry = retryableRoute(c.route) ? c.policy.retry : undefined;
  if (!retry && !c.rs) return new UnaryExchange(c, request).run();
  return callUnaryAttempts(c, request, retry);
}

/**
 * One attempt, no span: the state of the exchange in one object. The response head (request id,
 * the upstream's header metadata, content type and length) is written by one `writeHead` with a
 * plain object, so Node builds it straight from that object instead of through one `setHeader`
 * per header; headers set earlier (CORS, traffic) are merged by `writeHead` as usual.
 */
class UnaryExchange {
  private call: UnaryCall | undefined;
  private gone = false;
  /** The upstream's header metadata, kept until the answer is written. */
  private header: Metadata | undefined;
  /** The trailers of the OK status; they arrive before the answer is written. */
  private trailer: Metadata | undefined;

  constructor(
    private readonly c: UpstreamCall,
    private readonly request: JsonValue,
  ) {}

  async run(): Promise<number> {
    const { client, route, policy, res, md, deadline } = this.c;
    // The client went away before the answer was complete: cancel upstream. The listener stays
    // on the response (one per request); once the answer is written it does nothing.
    res.on("close", () => this.closed());
    this.call = startUnaryCall(client, route.method, this.request, {
      metadata: md,
      deadline,
      registry: route.registry,
      emitDefaults: policy.emitDefaults === true,
      useProtoNames: policy.useProtoNames === true,
      onHeader: (h) => {
        this.header = h;
      },
      onTrailer: (t) => {
        this.trailer = t;
      },
    });
    let answer: JsonValue;
    try {
      answer = await this.call.response;
    } catch (err) {
      // The error answer carries the header metadata the upstream sent before it failed.
      if (this.header && !res.headersSent) metadataToHeaders(this.header, res, this.c.headerPrefix);
      throw fromUpstream(err, this.c, this.header !== undefined);
    }
    if (this.gone) throw new RpcError(Status.CANCELLED, "client closed the connection");
    const body = JSON.stringify(pickResponseBody(route, answer, policy.useProtoNames === true));
    const head: Record<string, string | number> = { "x-request-id": this.c.requestId };
    if (this.header) metadataInto(this.header, head, this.c.headerPrefix);
    if (this.trailer) metadataInto(this.trailer, head, this.c.headerPrefix);
    head["content-type"] = "application/json";
    head["content-length"] = Buffer.byteLength(body);
    res.writeHead(200, head);
    res.end(body);
    return 200;
  }

  private closed(): void {
    if (this.c.res.writableFinished) return;
    this.gone = true;
    this.call?.cancel();
  }
}

function writeJson(res: ServerResponse, value: JsonValue): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Attempts with the route's retries and, when tracing, one client span each. */
async function callUnaryAttempts(c: UpstreamCall, request: JsonValue, retry: RoutePolicy["retry"]): Promise<number> {
  const { client, route, policy, res, md, deadline, rs } = c;
  res.setHeader("x-request-id", c.requestId);
  let current: UnaryCall | undefined;
  let gone = false;
  let abort: AbortController | undefined;
  // The client went away before the answer was complete: cancel upstream.
  const onClose = () => {
    if (res.writableFinished) return;
    gone = true;
    current?.cancel();
    abort?.abort();
  };
  res.on("close", onClose);
  // Response headers an attempt copied from its upstream's header metadata: a retry drops them,
  // so the client sees only the headers of the attempt that answers.
  let attemptHeaders: string[] = [];
  let headerSeen = false;
  const onHeader = (h: Metadata) => {
    headerSeen = true;
    if (!res.headersSent) attemptHeaders.push(...metadataToHeaders(h, res, c.headerPrefix));
  };
  // The OK trailers come with the status, before the answer is written.
  const onTrailer = (t: Metadata) => {
    if (!res.headersSent) attemptHeaders.push(...metadataToHeaders(t, res, c.headerPrefix));
  };
  const attempt = async (n: number): Promise<number> => {
    for (const name of attemptHeaders) res.removeHeader(name);
    attemptHeaders = [];
    headerSeen = false;
    // One client span per attempt, child of the request's span; the upstream's server span is its child.
    const up = rs ? startUpstreamSpan(rs, route.grpcPath, n) : undefined;
    let attemptMd = md;
    if (up || retry) attemptMd = md.clone();
    if (up) injectTrace(up, attemptMd);
    try {
      if (gone) throw new RpcError(Status.CANCELLED, "client closed the connection");
      current = startUnaryCall(client, route.method, request, {
        metadata: attemptMd,
        deadline,
        registry: route.registry,
        emitDefaults: policy.emitDefaults === true,
        useProtoNames: policy.useProtoNames === true,
        onHeader,
        onTrailer,
      });
      let answer: JsonValue;
      try {
        answer = await current.response;
      } catch (err) {
        throw fromUpstream(err, c, headerSeen);
      }
      if (gone) throw new RpcError(Status.CANCELLED, "client closed the connection");
      if (up) endUpstreamSpan(up, undefined);
      writeJson(res, pickResponseBody(route, answer, policy.useProtoNames === true));
      return 200;
    } catch (err) {
      if (up) endUpstreamSpan(up, spanError(err));
      throw err;
    }
  };
  try {
    if (!retry) return await attempt(1);
    abort = new AbortController();
    if (gone) abort.abort();
    return await withRetries(retry, { deadline, signal: abort.signal, committed: () => res.headersSent }, attempt);
  } finally {
    res.off("close", onClose);
  }
}

/** Streaming requests or responses: the generic `dynamicCall` path. */
export async function callStreaming(c: UpstreamCall, req: IncomingMessage, requests: JsonValue[]): Promise<number> {
  const { client, route, policy, res, md, deadline, rs } = c;
  res.setHeader("x-request-id", c.requestId);
  const abort = new AbortController();
  // The client went away before the answer was complete: cancel upstream.
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  const streaming = route.method.methodKind === "server_streaming" || route.method.methodKind === "bidi_streaming";
  const retry = retryableRoute(route) ? policy.retry : undefined;
  let attemptHeaders: string[] = [];
  try {
    return await withRetries(retry, { deadline, signal: abort.signal, committed: () => res.headersSent }, async (attempt) => {
      for (const name of attemptHeaders) res.removeHeader(name);
      attemptHeaders = [];
      const up = rs ? startUpstreamSpan(rs, route.grpcPath, attempt) : undefined;
      const attemptMd = md.clone();
      if (up) injectTrace(up, attemptMd);
      let headerSeen = false;
      try {
        const call = dynamicCall(client, route.method, requests, {
          metadata: attemptMd,
          deadline,
          registry: route.registry,
          emitDefaults: policy.emitDefaults === true,
          useProtoNames: policy.useProtoNames === true,
          signal: abort.signal,
          onHeader: (h) => {
            headerSeen = true;
            if (!res.headersSent) attemptHeaders.push(...metadataToHeaders(h, res, c.headerPrefix));
          },
          // A single answer (client streaming) is written after its trailers arrive; a stream's
          // head is sent before they exist, so they are not forwarded there.
          onTrailer: streaming
            ? undefined
            : (t) => {
                if (!res.headersSent) attemptHeaders.push(...metadataToHeaders(t, res, c.headerPrefix));
              },
        });
        const responses = mapFailures(call, c, () => headerSeen);
        if (streaming) {
          const status = await streamResponses(responses, req, res, route, policy.useProtoNames === true);
          if (up) endUpstreamSpan(up, status < 400 ? undefined : `HTTP ${status}`);
          return status;
        }
        let answer: JsonValue | undefined;
        for await (const value of responses) answer = value;
        if (abort.signal.aborted) throw new RpcError(Status.CANCELLED, "client closed the connection");
        if (up) endUpstreamSpan(up, undefined);
        writeJson(res, pickResponseBody(route, answer ?? {}, policy.useProtoNames === true));
        return 200;
      } catch (err) {
        if (up) endUpstreamSpan(up, spanError(err));
        throw err;
      }
    });
  } finally {
    res.off("close", onClose);
  }
}
