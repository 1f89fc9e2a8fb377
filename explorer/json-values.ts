import type { JsonValue } from "@bufbuild/protobuf";
import { RpcError, Status } from "../runtime/errors";

/**
 * Splits text into consecutive JSON values: newline-delimited JSON, or values
 * simply written one after another (`{"a":1}{"a":2}`). Each value is yielded
 * as soon as it is complete, so a streaming call can send while stdin is
 * still open.
 */
export async function* jsonValues(chunks: AsyncIterable<string | Buffer> | Iterable<string | Buffer>): AsyncGenerator<JsonValue> {
  const splitter = new JsonSplitter();
  let count = 0;
  const parse = (text: string): JsonValue => {
    count++;
    try {
      return JSON.parse(text) as JsonValue;
    } catch (err) {
      throw new RpcError(Status.INVALID_ARGUMENT, `request #${count} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  for await (const chunk of chunks) {
    for (const text of splitter.push(typeof chunk === "string" ? chunk : chunk.toString("utf8"))) yield parse(text);
  }
  const rest = splitter.end();
  if (rest === undefined) return;
  yield parse(rest);
}

/** Finds where each top-level value ends by tracking nesting and strings. */
class JsonSplitter {
  private current = "";
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** A bare literal (number, true, false, null) is being read. */
  private bare = false;

  push(text: string): string[] {
    const done: string[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.current === "") {
        if (/\s/.test(c)) continue;
        this.current = c;
        if (c === "{" || c === "[") this.depth = 1;
        else if (c === '"') this.inString = true;
        else this.bare = true;
        continue;
      }
      if (this.bare) {
        if (/\s/.test(c) || c === "{" || c === "[" || c === '"') {
          done.push(this.take());
          i--;
        } else {
          this.current += c;
        }
        continue;
      }
      this.current += c;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') {
          this.inString = false;
          if (this.depth === 0) done.push(this.take());
        }
      } else if (c === '"') {
        this.inString = true;
      } else if (c === "{" || c === "[") {
        this.depth++;
      } else if (c === "}" || c === "]") {
        if (--this.depth === 0) done.push(this.take());
      }
    }
    return done;
  }

  /** What is left at the end of input; an unfinished object or array is returned as is, to fail in JSON.parse. */
  end(): string | undefined {
    return this.current === "" ? undefined : this.take();
  }

  private take(): string {
    const text = this.current;
    this.current = "";
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.bare = false;
    return text;
  }
}
