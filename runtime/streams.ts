import type { Writable } from "node:stream";

/** Writes every message of `source` to `sink`, honouring back-pressure. Stops early if `signal` fires. */
export async function pump(source: AsyncIterable<unknown> | Iterable<unknown>, sink: Writable, signal?: AbortSignal): Promise<void> {
  for await (const message of source) {
    if (signal?.aborted || sink.destroyed) return;
    if (!sink.write(message)) await drained(sink, signal);
  }
}

function drained(sink: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sink.off("drain", done);
      sink.off("close", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    sink.once("drain", done);
    sink.once("close", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** True for values that can be iterated with `for await`. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value != null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function";
}
