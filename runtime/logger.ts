/**
 * One logger interface for the whole framework. The default is pino, writing one JSON
 * line per entry to stderr at `PROTOMESH_LOG_LEVEL` (default `info`). Plug in your own
 * through `setLogger` or per server/client: an existing pino logger with `fromPino`, or
 * anything else that implements {@link Logger}.
 */
import type pino from "pino";
import { trace } from "@opentelemetry/api";

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

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

function levelFromEnv(): LogLevel {
  const v = (process.env.PROTOMESH_LOG_LEVEL ?? "info").toLowerCase();
  return (LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : "info";
}

/** Options of {@link createJsonLogger}. */
export interface JsonLoggerOptions {
  /** Lowest level written (default `PROTOMESH_LOG_LEVEL`, else `info`). */
  level?: LogLevel;
  /** Fields on every entry. */
  bindings?: LogFields;
  /** Receives each JSON line (without the newline); default: stderr. */
  write?: (line: string) => void;
}

/**
 * The default logger: pino, JSON lines with `level` as a word, an ISO `time`, and the
 * `trace_id`/`span_id` of the active span when tracing is on, so logs and traces join up.
 *
 * @example
 *   setLogger(createJsonLogger({ level: "debug", bindings: { app: "checkout" } }));
 */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const pino = loadPino();
  const write = options.write;
  const destination: pino.DestinationStream = write
    ? { write: (chunk: string) => write(chunk.endsWith("\n") ? chunk.slice(0, -1) : chunk) }
    : pino.destination({ dest: 2, sync: true });
  const instance = pino(
    {
      level: options.level ?? levelFromEnv(),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: serializeErrors,
      },
      mixin: traceFields,
    },
    destination,
  );
  return fromPino(options.bindings ? instance.child(options.bindings) : instance);
}

/**
 * Adapts a pino logger (yours, with your transports and redaction) to protomesh's
 * {@link Logger}.
 *
 * @example
 *   setLogger(fromPino(pino({ level: "debug" })));
 */
export function fromPino(instance: pino.Logger): Logger {
  return {
    debug: (msg, fields) => (fields ? instance.debug(fields, msg) : instance.debug(msg)),
    info: (msg, fields) => (fields ? instance.info(fields, msg) : instance.info(msg)),
    warn: (msg, fields) => (fields ? instance.warn(fields, msg) : instance.warn(msg)),
    error: (msg, fields) => (fields ? instance.error(fields, msg) : instance.error(msg)),
    child: (fields) => fromPino(instance.child(fields)),
  };
}

/** Errors anywhere at the top level of the fields keep their message and stack (pino itself serializes only `err`). */
function serializeErrors(fields: Record<string, unknown>): Record<string, unknown> {
  let out = fields;
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error && key !== "err") {
      if (out === fields) out = { ...fields };
      out[key] = loadPino().stdSerializers.err(value);
    }
  }
  return out;
}

function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  if (!trace.isSpanContextValid(ctx)) return {};
  const { traceId, spanId } = ctx;
  return { trace_id: traceId, span_id: spanId };
}

/** pino, loaded when the first line is logged rather than by `import "protomesh"`. */
function loadPino(): typeof pino {
  return require("pino") as typeof pino;
}

/** A logger that builds the real one on its first line (a child, on the child's first line). */
function deferredLogger(make: () => Logger): Logger {
  let real: Logger | undefined;
  const get = () => (real ??= make());
  return {
    debug: (msg, fields) => get().debug(msg, fields),
    info: (msg, fields) => get().info(msg, fields),
    warn: (msg, fields) => get().warn(msg, fields),
    error: (msg, fields) => get().error(msg, fields),
    child: (fields) => deferredLogger(() => get().child(fields)),
  };
}

let current: Logger | undefined;

/** The framework-wide default logger (a JSON logger, made when it first logs). */
export function getLogger(): Logger {
  return (current ??= deferredLogger(() => createJsonLogger()));
}

/** Replaces the framework-wide default logger. */
export function setLogger(logger: Logger): void {
  current = logger;
}
