import { expect } from "chai";
import pino from "pino";
import { trace } from "@opentelemetry/api";
import { createJsonLogger, fromPino, getLogger, setLogger, createServer, type Logger, type LogFields } from "protomesh";
import { setupTracing } from "protomesh/tracing";

function capture(level: "debug" | "info" | "warn" | "error" = "debug") {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createJsonLogger({ level, write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe("logs: one Logger interface, pino by default", () => {
  it("writes one JSON object per entry with the level as a word, an ISO time, the message and the fields", () => {
    const { logger, lines } = capture();
    logger.info("lease regained", { service: "greeter", leaseId: "7" });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: "info", msg: "lease regained", service: "greeter", leaseId: "7" });
    expect(new Date(String(lines[0]!.time)).toISOString()).to.equal(lines[0]!.time);
  });

  it("drops entries below the level", () => {
    const { logger, lines } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(lines.map((l) => l.level)).to.deep.equal(["warn", "error"]);
  });

  it("binds fields through child loggers, nested", () => {
    const { logger, lines } = capture();
    logger.child({ component: "registry" }).child({ service: "greeter" }).warn("etcd unreachable", { attempt: 2 });
    expect(lines[0]).to.include({ component: "registry", service: "greeter", attempt: 2, msg: "etcd unreachable" });
  });

  it("keeps the message and stack of errors passed under any field name", () => {
    const { logger, lines } = capture();
    logger.error("failed", { err: new Error("first"), cause: new TypeError("second") });
    const err = lines[0]!.err as Record<string, unknown>;
    const cause = lines[0]!.cause as Record<string, unknown>;
    expect(err).to.include({ message: "first", type: "Error" });
    expect(String(err.stack)).to.contain("logger.test.ts");
    expect(cause).to.include({ message: "second", type: "TypeError" });
  });

  it("adds trace_id and span_id while a span is active, so logs join their trace", async () => {
    const stop = setupTracing({ exporter: "none" });
    try {
      const { logger, lines } = capture();
      logger.info("outside");
      await trace.getTracer("test").startActiveSpan("op", async (span) => {
        logger.info("inside");
        span.end();
      });
      expect(lines[0]).to.not.have.property("trace_id");
      expect(lines[1]!.trace_id).to.match(/^[0-9a-f]{32}$/);
      expect(lines[1]!.span_id).to.match(/^[0-9a-f]{16}$/);
    } finally {
      await stop();
    }
  });

  it("adapts a pino logger of the user's own", () => {
    const out: string[] = [];
    const own = pino({ level: "info", base: { app: "shop" } }, { write: (s: string) => out.push(s) });
    const logger = fromPino(own);
    logger.child({ component: "server" }).info("serving", { address: "127.0.0.1:1" });
    logger.debug("hidden");
    expect(out).to.have.length(1);
    expect(JSON.parse(out[0]!)).to.include({ app: "shop", component: "server", address: "127.0.0.1:1", msg: "serving", level: 30 });
  });

  it("lets any implementation replace the framework-wide logger, which servers then use", async () => {
    const entries: Array<{ level: string; msg: string; fields: LogFields }> = [];
    const make = (bound: LogFields): Logger => ({
      debug: (msg, f) => entries.push({ level: "debug", msg, fields: { ...bound, ...f } }),
      info: (msg, f) => entries.push({ level: "info", msg, fields: { ...bound, ...f } }),
      warn: (msg, f) => entries.push({ level: "warn", msg, fields: { ...bound, ...f } }),
      error: (msg, f) => entries.push({ level: "error", msg, fields: { ...bound, ...f } }),
      child: (f) => make({ ...bound, ...f }),
    });
    const previous = getLogger();
    setLogger(make({}));
    try {
      const server = createServer({ name: "greeter" });
      await server.listen("127.0.0.1:0");
      await server.shutdown({ graceMs: 10 });
    } finally {
      setLogger(previous);
    }
    const serving = entries.find((e) => e.msg === "serving");
    expect(serving?.fields).to.include({ component: "server", service: "greeter" });
  });
});
