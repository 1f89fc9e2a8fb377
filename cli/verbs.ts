/**
 * The command line of a command with verbs (`protomesh config set …`, `protomesh traffic get …`):
 * the verb, its flags and positionals, `--help`, and the usage errors every such command gives
 * the same way. Each verb names the flags it takes; a flag of another verb is a usage error.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ExitCode, printUsageError, UsageError, type CliIo } from "./command";

export interface VerbLine<F> {
  readonly verb: string;
  readonly flags: F;
  readonly positionals: string[];
}

export interface VerbCommandSpec {
  /** The command's name after `protomesh`, for messages. */
  readonly command: string;
  readonly usage: string;
  /** Flags each verb takes. */
  readonly verbs: Readonly<Record<string, { readonly flags: readonly string[] }>>;
  /** Every flag of every verb, as `node:util` `parseArgs` options. */
  readonly options: NonNullable<ParseArgsConfig["options"]>;
  /** Flags every verb takes besides its own (`help` always). */
  readonly common?: readonly string[];
}

/**
 * Parses `args` (the verb first). Resolves to the parsed line, or to an exit code when it
 * answered by itself: the usage on `--help` or no verb, a usage error on a bad line.
 */
export function parseVerbLine<F>(spec: VerbCommandSpec, args: readonly string[], io: CliIo): VerbLine<F> | number {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === "-h" || verb === "--help" || verb === "help") {
    (verb === undefined ? io.err : io.out)(spec.usage);
    return verb === undefined ? ExitCode.usage : ExitCode.ok;
  }
  const known = Object.hasOwn(spec.verbs, verb) ? spec.verbs[verb] : undefined;
  if (!known) return usageError(spec, io, `unknown command "${verb}"`);
  try {
    const parsed = parseArgs({ args: rest, options: spec.options, strict: true, allowPositionals: true });
    const allowed = new Set<string>(["help", ...(spec.common ?? []), ...known.flags]);
    const stray = Object.keys(parsed.values).filter((f) => !allowed.has(f));
    if (stray.length > 0) throw new UsageError(`${stray.map((f) => `--${f}`).join(", ")} does not apply to ${verb}`);
    if (parsed.values.help) {
      io.out(spec.usage);
      return ExitCode.ok;
    }
    return { verb, flags: parsed.values as F, positionals: parsed.positionals };
  } catch (err) {
    return usageError(spec, io, err instanceof Error ? err.message : String(err));
  }
}

/** Prints a usage error the way every command does; returns the usage exit code. */
export function usageError(spec: Pick<VerbCommandSpec, "command">, io: CliIo, message: string): number {
  return printUsageError(io, spec.command, message);
}
