/** A `Logger` that records entries, for specs that check what was logged (and how often). */
import type { LogFields, Logger } from "../../runtime/logger";
import { Recorder } from "./wait";

export interface LogEntry {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields: LogFields;
}

export interface CapturedLogger extends Logger {
  readonly entries: Recorder<LogEntry>;
  /** Entries whose message contains `text`. */
  matching(text: string): LogEntry[];
}

/** Records every entry; set `PROTOMESH_TEST_LOG=1` to also print them. */
export function captureLogger(): CapturedLogger {
  const entries = new Recorder<LogEntry>();
  const echo = process.env.PROTOMESH_TEST_LOG === "1";
  const make = (bindings: LogFields): Logger => {
    const emit = (level: LogEntry["level"]) => (msg: string, fields?: LogFields) => {
      const all = { ...bindings, ...fields };
      if (echo) process.stderr.write(`${level} ${msg} ${JSON.stringify(all, (_k, v) => (v instanceof Error ? v.message : v))}\n`);
      entries.push({ level, msg, fields: all });
    };
    return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error"), child: (f) => make({ ...bindings, ...f }) };
  };
  return Object.assign(make({}), {
    entries,
    matching: (text: string) => entries.values.filter((e) => e.msg.includes(text)),
  });
}
