/**
 * One logger interface for the whole framework. Pass your own (pino, winston, …)
 * through `setLogger` or per server/client; the default writes one JSON line per
 * entry to stderr at `PROTOMESH_LOG_LEVEL` (default `info`).
 */

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFields = Record<string, unknown>;

/** Structured, levelled logging. `child` binds fields to every later entry. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function levelFromEnv(): LogLevel {
  const v = (process.env.PROTOMESH_LOG_LEVEL ?? "info").toLowerCase();
  return v in ORDER ? (v as LogLevel) : "info";
}

/** A dependency-free JSON-lines logger. */
export function createJsonLogger(options: { level?: LogLevel; bindings?: LogFields; write?: (line: string) => void } = {}): Logger {
  const level = options.level ?? levelFromEnv();
  const bindings = options.bindings ?? {};
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const entry: LogFields = { level: lvl, time: new Date().toISOString(), ...bindings, msg, ...fields };
    for (const [k, v] of Object.entries(entry)) if (v instanceof Error) entry[k] = { name: v.name, message: v.message };
    write(JSON.stringify(entry));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (f) => createJsonLogger({ level, bindings: { ...bindings, ...f }, write }),
  };
}

let current: Logger = createJsonLogger();

/** The framework-wide default logger. */
export function getLogger(): Logger {
  return current;
}

/** Replaces the framework-wide default logger. */
export function setLogger(logger: Logger): void {
  current = logger;
}
