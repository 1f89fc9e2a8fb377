/** What every `protomesh <command>` is given and returns. */

/** Exit codes shared by all commands. */
export const ExitCode = {
  ok: 0,
  /** The command ran and failed (bad input files, a tool error). */
  failure: 1,
  /** The command line itself was wrong. */
  usage: 2,
} as const;

/** Where a command reads its surroundings and writes its output. */
export interface CliIo {
  /** Directory relative paths on the command line are resolved against. */
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Writes to standard output, as is. */
  out(text: string): void;
  /** Writes to standard error, as is. */
  err(text: string): void;
}

/** One subcommand. Its module is loaded only when it runs. */
export interface Command {
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** A command-line mistake: the command prints the message and where its usage is, and exits 2. */
export class UsageError extends Error {
  override readonly name: string = "UsageError";
}

/** A failure worth one clear line and exit code 1 (no stack trace). */
export class CliError extends Error {
  override readonly name: string = "CliError";
}

/**
 * A usage error as every command prints it: the message on one line, then one line pointing at
 * the command's `--help` (the full usage is for `--help`, on stdout, exit 0).
 * `command` is what follows `protomesh` (`gen`, `gateway`), or "" for `protomesh` itself.
 */
export function usageErrorText(command: string, message: string): string {
  const name = command === "" ? "protomesh" : `protomesh ${command}`;
  return `${name}: ${message}\nrun '${name} --help' for usage\n`;
}

/** Prints {@link usageErrorText} to stderr; returns the usage exit code. */
export function printUsageError(io: CliIo, command: string, message: string): number {
  io.err(usageErrorText(command, message));
  return ExitCode.usage;
}
