import { setMaxListeners } from "node:events";
import { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "./context";
import type { MethodDefinition } from "./definition";
import type { CallRequest } from "./interceptor";

/**
 * The cancellation state of a served call, with its `AbortSignal` made only when someone
 * asks for it. Most unary handlers never look at `ctx.signal`; an `AbortController`, a
 * deadline timer and a `cancelled` listener per call would cost them several µs for nothing.
 * Until the signal exists, `aborted` is read straight from the call (client cancelled,
 * deadline passed, or `abort()` called).
 */
export class CallAbort {
  /** Neighbours in the server's list of calls in flight (see `InFlightCalls` in server.ts). */
  previousInFlight: CallAbort | undefined = undefined;
  nextInFlight: CallAbort | undefined = undefined;
  private controller: AbortController | undefined;
  private abortedWith: { reason: unknown } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelListener: (() => void) | undefined;
  private finished = false;

  constructor(
    private readonly call: CancellableCall,
    private readonly deadline: number | undefined,
    private readonly reasons: { cancelled: () => unknown; deadline: () => unknown },
  ) {}

  /** The signal handlers and interceptors see; fires on cancel, deadline or `abort()`. */
  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    // A handler may fan out to many downstream calls, each listening on this signal.
    setMaxListeners(0, controller.signal);
    if (this.aborted) {
      controller.abort(this.abortedWith!.reason);
      return controller.signal;
    }
    if (!this.finished) {
      if (this.deadline !== undefined) {
        this.timer = setTimeout(() => this.abort(this.reasons.deadline()), Math.max(0, this.deadline - Date.now()));
      }
      // Through a local: a function literal assigned straight to a property is allocated in V8's
      // old generation, where it would keep this call's young objects alive until a mark-compact.
      const onCancelled = () => this.abort(this.reasons.cancelled());
      this.cancelListener = onCancelled;
      this.call.once("cancelled", onCancelled);
    }
    return controller.signal;
  }

  /** True once the call was cancelled, its deadline passed, or `abort()` ran; makes no signal. */
  get aborted(): boolean {
    if (this.abortedWith) return true;
    if (this.finished) return false;
    if (this.call.cancelled) this.abort(this.reasons.cancelled());
    else if (this.deadline !== undefined && Date.now() >= this.deadline) this.abort(this.reasons.deadline());
    return this.abortedWith !== undefined;
  }

  get reason(): unknown {
    return this.aborted ? this.abortedWith!.reason : undefined;
  }

  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.release();
    this.controller?.abort(reason);
  }

  /** The call is over: stop watching it (the state reached so far stays). */
  finish(): void {
    this.finished = true;
    this.release();
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.cancelListener) this.call.removeListener("cancelled", this.cancelListener);
    this.cancelListener = undefined;
  }
}

/** The surface of a grpc-js server call that cancellation needs. */
export interface CancellableCall {
  readonly cancelled?: boolean;
  once(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/**
 * The context handlers get. A class rather than an object literal: its `signal` getter lives
 * on the prototype, so making one per call stays cheap; the response metadata objects are
 * made on first use too.
 */
export class ServerCallContext implements CallContext {
  private header: Metadata | undefined = undefined;
  private trailer: Metadata | undefined = undefined;
  /**
   * The OpenTelemetry context of the call's SERVER span (an `@opentelemetry/api` Context),
   * set by the tracing interceptor: client calls made from the handler find their parent here.
   */
  traceContext: unknown = undefined;

  constructor(
    readonly method: MethodDefinition,
    readonly metadata: Metadata,
    readonly peer: string,
    readonly deadline: number | undefined,
    readonly abort: CallAbort,
  ) {}

  remainingMs(): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - Date.now());
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get responseHeader(): Metadata {
    return (this.header ??= new Metadata());
  }

  get responseTrailer(): Metadata {
    return (this.trailer ??= new Metadata());
  }

  /** The response headers if anything touched them, without making them. */
  peekHeader(): Metadata | undefined {
    return this.header;
  }

  /** The trailers if anything touched them, without making them. */
  peekTrailer(): Metadata | undefined {
    return this.trailer;
  }
}

/** What a server interceptor chain receives; `signal` is made only if someone reads it. */
export class ServerCallRequest implements CallRequest {
  readonly side = "server" as const;
  readonly method: MethodDefinition;
  readonly metadata: Metadata;
  readonly deadline: number | undefined;
  readonly peer: string;

  constructor(
    readonly context: ServerCallContext,
    readonly request: unknown,
  ) {
    this.method = context.method;
    this.metadata = context.metadata;
    this.deadline = context.deadline;
    this.peer = context.peer;
  }

  get signal(): AbortSignal {
    return this.context.abort.signal;
  }
}

/** Whether the call `req` travels in was aborted, and why; does not make a server call's signal. */
export function abortStateOf(req: CallRequest): { aborted: boolean; reason: unknown } {
  if (req instanceof ServerCallRequest) {
    const abort = req.context.abort;
    return { aborted: abort.aborted, reason: abort.reason };
  }
  return { aborted: req.signal.aborted, reason: req.signal.reason };
}
