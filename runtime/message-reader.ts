import type { Readable } from "node:stream";

const DONE: IteratorResult<unknown> = Object.freeze({ done: true, value: undefined });

/** What {@link MessageReader} does at the edges of a stream. */
export interface MessageReaderHooks {
  /** Turns the stream's 'error' into what the reader throws. */
  mapError(err: unknown): unknown;
  /** Called once when reading stops: `completed` is false when the reader gave up early (`return()`). */
  onFinish?(completed: boolean): void;
}

/**
 * Reads an object-mode `Readable` (a grpc-js response stream) as an async iterator.
 *
 * Hand-written rather than an async generator over the stream's own iterator: each of those
 * layers costs a few promises per message. Here a message already buffered is returned at
 * once, and the reader waits on the stream's events only when its buffer is empty. Buffered
 * messages are delivered before an error that follows them, as Node's own iterator does.
 */
export class MessageReader implements AsyncIterableIterator<unknown> {
  private ended = false;
  private failure: { error: unknown } | undefined;
  private finished = false;
  private waiters: Array<() => void> = [];
  private readonly wake = () => {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) w();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (err: unknown) => {
    this.failure ??= { error: err };
    this.wake();
  };

  constructor(
    private readonly stream: Readable,
    private readonly hooks: MessageReaderHooks,
  ) {
    stream.on("readable", this.wake);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.finished) return Promise.resolve(DONE);
    const message: unknown = this.stream.read();
    if (message !== null) return Promise.resolve({ done: false, value: message });
    if (this.failure) {
      this.finish(true);
      return Promise.reject(this.hooks.mapError(this.failure.error));
    }
    if (this.ended || this.stream.readableEnded) {
      this.finish(true);
      return Promise.resolve(DONE);
    }
    return new Promise((resolve, reject) => {
      this.waiters.push(() => this.next().then(resolve, reject));
    });
  }

  return(): Promise<IteratorResult<unknown>> {
    if (!this.finished) this.finish(false);
    return Promise.resolve(DONE);
  }

  private finish(completed: boolean): void {
    this.finished = true;
    this.stream.off("readable", this.wake);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    // Keep a listener for 'error': one emitted after the reader stopped must not crash the process.
    this.stream.off("error", this.onError);
    this.stream.on("error", ignore);
    this.hooks.onFinish?.(completed);
    this.wake();
  }
}

function ignore(): void {}
