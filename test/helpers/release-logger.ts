import type { Logger } from "../../runtime/logger";

/** A logger that drops everything (release specs assert on state, not on log lines). */
export function silentLogger(): Logger {
  const logger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => logger };
  return logger;
}
