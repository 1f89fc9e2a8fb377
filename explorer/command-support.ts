import type { ParseArgsConfig } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo } from "../cli/command";
import { codeName, RpcError } from "../runtime/errors";

/** What the explorer commands read besides the shared CLI surroundings: stdin, replaceable in tests. */
export interface ExplorerIo extends CliIo {
  readonly stdin?: AsyncIterable<string | Buffer>;
  /** Whether stdin is a terminal (nothing piped in). */
  readonly stdinIsTTY?: boolean;
}

/** Options every explorer command takes. */
export const COMMON_OPTIONS = {
  header: { type: "string", short: "H", multiple: true },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const COMMON_HELP = `  -H, --header KEY:VALUE  metadata to send (repeatable); keys ending in -bin take base64
      --deadline MS       fail with DEADLINE_EXCEEDED after MS milliseconds
  -h, --help              show this help

<target> is host:port, or etcd:///<service> to find the service in the registry
(ETCD_ENDPOINTS, comma-separated; PROTOMESH_NAMESPACE, default "default").`;

/** Metadata from `-H key:value` arguments. */
export function metadataFrom(headers: readonly string[] | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const header of headers ?? []) {
    const colon = header.indexOf(":");
    if (colon <= 0) throw new UsageError(`bad header ${JSON.stringify(header)}: use key:value`);
    const key = header.slice(0, colon).trim().toLowerCase();
    const value = header.slice(colon + 1).trim();
    try {
      if (key.endsWith("-bin")) md.add(key, Buffer.from(value, "base64"));
      else md.add(key, value);
    } catch (err) {
      throw new UsageError(`bad header ${JSON.stringify(header)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return md;
}

/** `--deadline MS` as an absolute deadline, or `fallbackMs` from now (undefined: none). */
export function deadlineFrom(value: string | undefined, fallbackMs?: number): number | undefined {
  if (value === undefined) return fallbackMs === undefined ? undefined : Date.now() + fallbackMs;
  const ms = Number(value);
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError(`--deadline must be a positive number of milliseconds, got ${JSON.stringify(value)}`);
  return Date.now() + ms;
}

/** Runs a `parseArgs` call; what it rejects becomes a `UsageError`. */
export function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Runs a command body and turns what it throws into output and an exit code:
 * an RPC failure prints its status code name and message, a usage mistake where
 * the usage is, anything else one line.
 */
export async function runCommand(name: string, io: CliIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) return printUsageError(io, name, err.message);
    if (err instanceof RpcError) {
      const details = err.details === undefined ? "" : `\ndetails: ${JSON.stringify(err.details)}`;
      io.err(`protomesh ${name}: ${codeName(err.code)}: ${err.rawMessage}${details}\n`);
      return ExitCode.failure;
    }
    if (err instanceof CliError) {
      io.err(`protomesh ${name}: ${err.message}\n`);
      return ExitCode.failure;
    }
    throw err;
  }
}
