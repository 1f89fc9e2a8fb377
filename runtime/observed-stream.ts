/**
 * Wraps a message stream so an observer hears each message and, exactly once, how the
 * stream ended. Tracing and metrics interceptors use it to end a span or stop a timer
 * when a streaming call finishes rather than when it starts.
 */
import { RpcError, Status } from "./errors";
import { abortStateOf } from "./call-abort";
import type { CallRequest } from "./interceptor";

/** What {@link observeStream} reports. */
export interface StreamObserver {
  /** Called for every message that passes through. */
  onMessage?(): void;
  /**
   * Called once: `error` is set when the source threw; `early` is true when the consumer
   * stopped before the source was exhausted (a `break`, a cancelled call).
   */
  onEnd?(error: unknown, early: boolean): void;
  /** Runs each step of the source (for example inside a tracing context). */
  run?<R>(step: () => R): R;
}

/** Returns an async iterable that yields what `source` yields and reports to `observer`. */
export function observeStream<T>(source: AsyncIterable<T> | Iterable<T>, observer: StreamObserver): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const run = observer.run ?? ((step) => step());
      const it: AsyncIterator<T> | Iterator<T> = run(() =>
        Symbol.asyncIterator in source ? (source as AsyncIterable<T>)[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator](),
      );
      let ended = false;
      const end = (error: unknown, early: boolean) => {
        if (ended) return;
        ended = true;
        observer.onEnd?.(error, early);
      };
      return {
        async next(): Promise<IteratorResult<T>> {
          try {
            const result = await run(() => it.next());
            if (result.done) end(undefined, false);
            else observer.onMessage?.();
            return result;
          } catch (err) {
            end(err, false);
            throw err;
          }
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          try {
            if (it.return) return await run(() => it.return!(value));
            return { done: true, value: value as T };
          } finally {
            end(undefined, true);
          }
        },
        async throw(error?: unknown): Promise<IteratorResult<T>> {
          try {
            if (it.throw) return await run(() => it.throw!(error));
            throw error;
          } catch (err) {
            end(err, false);
            throw err;
          }
        },
      };
    },
  };
}

/**
 * The outcome of a call for its status: the error it ended with; else, if the call's
 * signal fired (cancelled, deadline), the signal's reason; else a cancellation when the
 * stream stopped early; else nothing (OK).
 */
export function callOutcome(error: unknown, req: CallRequest, early = false): unknown {
  if (error !== undefined) return error;
  const state = abortStateOf(req);
  if (state.aborted) return RpcError.from(state.reason, Status.CANCELLED);
  return early ? new RpcError(Status.CANCELLED, "stream closed before its end") : undefined;
}
