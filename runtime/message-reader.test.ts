import { expect } from "chai";
import { Readable } from "node:stream";
import { MessageReader } from "./message-reader";

/** A stream shaped like grpc-js's response streams: object mode, `push(null)` then 'error' on a failed status. */
function source(): Readable {
  return new Readable({ objectMode: true, read() {} });
}

async function drain(reader: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const m of reader) out.push(m);
  return out;
}

describe("MessageReader: a response stream as an async iterator", () => {
  it("yields messages pushed before and after it waits, then ends", async () => {
    const s = source();
    s.push({ n: 1 });
    const reader = new MessageReader(s, { mapError: (e) => e });
    const all = drain(reader);
    setImmediate(() => {
      s.push({ n: 2 });
      s.push({ n: 3 });
      setImmediate(() => s.push(null));
    });
    expect(await all).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it("delivers buffered messages before the error that follows them, mapped", async () => {
    const s = source();
    let finished: boolean | undefined;
    const reader = new MessageReader(s, { mapError: (e) => new Error(`mapped: ${(e as Error).message}`), onFinish: (c) => (finished = c) });
    s.push({ n: 1 });
    s.push({ n: 2 });
    s.push(null);
    s.emit("error", new Error("boom"));
    const seen: unknown[] = [];
    let caught: Error | undefined;
    try {
      for await (const m of reader) seen.push(m);
    } catch (err) {
      caught = err as Error;
    }
    expect(seen).to.deep.equal([{ n: 1 }, { n: 2 }]);
    expect(caught?.message).to.equal("mapped: boom");
    expect(finished).to.equal(true);
  });

  it("answers next() calls made without waiting in order", async () => {
    const s = source();
    const reader = new MessageReader(s, { mapError: (e) => e });
    const pending = [reader.next(), reader.next(), reader.next()];
    s.push("a");
    s.push("b");
    s.push(null);
    const results = await Promise.all(pending);
    expect(results.map((r) => (r.done ? "done" : r.value))).to.deep.equal(["a", "b", "done"]);
  });

  it("reports an early stop, stops listening, and survives a later error", async () => {
    const s = source();
    let finished: boolean | undefined;
    const reader = new MessageReader(s, { mapError: (e) => e, onFinish: (c) => (finished = c) });
    s.push("a");
    s.push("b");
    for await (const m of reader) {
      expect(m).to.equal("a");
      break;
    }
    expect(finished).to.equal(false);
    expect(s.listenerCount("readable")).to.equal(0);
    expect(() => s.emit("error", new Error("late"))).not.to.throw();
    expect(await reader.next()).to.deep.equal({ done: true, value: undefined });
  });
});
