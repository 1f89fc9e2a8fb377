/** `protomesh tx list|show|retry|stop`: the coordinator's query API from the command line. */
import { parseArgs } from "node:util";
import { ExitCode, printUsageError, type CliIo, type Command } from "../../cli/command";
import { etcdEndpointsOf, noEtcdEndpoints } from "../../cli/etcd-endpoints";
import { createClient } from "../../runtime/client";
import { RpcError, codeName } from "../../runtime/errors";
import { etcdRegistry } from "../../registry/etcd/registry";
import { TxCoordinatorDefinition } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import { Transaction } from "../../gen/protomesh/transaction/v1/coordinator";
import { DEFAULT_TX_SERVICE } from "../server/tx-server";
import { TX_MODES, TX_STATUSES, UNFINISHED, type TxMode, type TxStatus } from "../store/types";
import { formatDuration, parseDuration } from "../../runtime/duration";

const USAGE = `usage: protomesh tx <command> [options]

commands:
  list                 transactions, newest first (--status, --mode, --older-than, --stuck,
                       --limit N, --page TOKEN)
  show GID             one transaction: status, branches, attempts and last error
  retry GID            drive an unfinished transaction now (or restart one that gave up)
  stop GID             end an unfinished transaction as failed, calling no more branches

options:
  --coordinator TARGET the coordinator (default etcd:///${DEFAULT_TX_SERVICE}, or host:port)
  --endpoints LIST     etcd endpoints, comma-separated (default ETCD_ENDPOINTS)
  --namespace NS       registry namespace (default PROTOMESH_NAMESPACE, else "default")
  --status S           list: prepared | submitted | aborting | succeed | failed
  --mode M             list: tcc | saga | msg | notify
  --older-than AGE     list: only transactions begun at least AGE ago (30s, 10m, 2h, 1h30m)
  --unfinished         list: only prepared, submitted or aborting ones
  --stuck AGE          list: unfinished and begun at least AGE ago (--unfinished --older-than AGE)
  --limit N            list: at most N (default 50)
  --page TOKEN         list: continue after a previous page
  --json               machine-readable output
  -h, --help           show this help
`;

const VERBS = ["list", "show", "retry", "stop"];

export const txCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    const [verb, ...rest] = args;
    if (verb === undefined || verb === "-h" || verb === "--help" || verb === "help") {
      (verb === undefined ? io.err : io.out)(USAGE);
      return verb === undefined ? ExitCode.usage : ExitCode.ok;
    }
    if (!VERBS.includes(verb)) return usage(io, `unknown command "${verb}"`);
    let values: Record<string, string | boolean | undefined>;
    let positionals: string[];
    try {
      const p = parseArgs({
        args: rest,
        options: {
          coordinator: { type: "string" },
          endpoints: { type: "string" },
          namespace: { type: "string" },
          status: { type: "string" },
          mode: { type: "string" },
          "older-than": { type: "string" },
          unfinished: { type: "boolean" },
          stuck: { type: "string" },
          limit: { type: "string" },
          page: { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: true,
      });
      values = p.values;
      positionals = p.positionals;
    } catch (err) {
      return usage(io, (err as Error).message);
    }
    if (values.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }
    if (verb === "list" ? positionals.length > 0 : positionals.length !== 1) return usage(io, verb === "list" ? "list takes no arguments" : `${verb} takes one transaction id`);
    if (values.limit !== undefined && !/^\d+$/.test(values.limit as string)) return usage(io, `--limit must be a whole number, got "${String(values.limit)}"`);
    if (values.status !== undefined && !TX_STATUSES.includes(values.status as TxStatus)) return usage(io, `--status must be one of ${TX_STATUSES.join(", ")}, got "${String(values.status)}"`);
    if (values.mode !== undefined && !TX_MODES.includes(values.mode as TxMode)) return usage(io, `--mode must be one of ${TX_MODES.join(", ")}, got "${String(values.mode)}"`);
    if (verb !== "list") {
      const listOnly = ["status", "mode", "limit", "page"].filter((k) => values[k] !== undefined);
      if (listOnly.length > 0) return usage(io, `${listOnly.map((k) => `--${k}`).join(", ")} ${listOnly.length === 1 ? "goes" : "go"} with list`);
    }
    let age: AgeFilter;
    try {
      age = ageFilter(values);
    } catch (err) {
      return usage(io, (err as Error).message);
    }
    if (verb !== "list" && (age.olderThanMs > 0 || age.unfinished)) return usage(io, "--older-than, --unfinished and --stuck go with list");

    const target = (values.coordinator as string | undefined) ?? `etcd:///${DEFAULT_TX_SERVICE}`;
    let discovery: ReturnType<typeof etcdRegistry> | undefined;
    try {
      if (target.startsWith("etcd:")) {
        const endpoints = etcdEndpointsOf(values.endpoints as string | undefined, io.env);
        if (endpoints.length === 0) {
          // The line was right; what is missing is the surroundings: a failure (1), as in every command that needs etcd.
          io.err(`protomesh tx ${verb}: ${noEtcdEndpoints("--endpoints")} (or --coordinator host:port)\n`);
          return ExitCode.failure;
        }
        discovery = etcdRegistry({ endpoints, namespace: values.namespace as string | undefined });
      }
      const co = createClient(TxCoordinatorDefinition, target, { discovery, defaultDeadlineMs: 10_000 });
      try {
        const json = values.json === true;
        if (verb === "list") {
          const r = await co.list({ status: (values.status as string) ?? "", mode: (values.mode as string) ?? "", limit: values.limit ? Number(values.limit) : 0, page: (values.page as string) ?? "", ...age });
          if (json) io.out(JSON.stringify({ transactions: r.transactions.map((t) => Transaction.toJSON(t)), nextPage: r.nextPage }, null, 2) + "\n");
          else {
            io.out(`${"GID".padEnd(34)} ${"MODE".padEnd(6)} ${"STATUS".padEnd(9)} ${"ROUNDS".padStart(6)}  CREATED                   LAST ERROR\n`);
            for (const t of r.transactions) io.out(`${t.gid.padEnd(34)} ${t.mode.padEnd(6)} ${t.status.padEnd(9)} ${String(t.rounds).padStart(6)}  ${new Date(t.createdAtMs).toISOString()}  ${t.lastError.slice(0, 80)}\n`);
            if (r.transactions.length === 0) io.out(`(none${age.olderThanMs > 0 || age.unfinished ? `: no ${age.unfinished ? "unfinished " : ""}transaction${age.olderThanMs > 0 ? ` begun ${formatDuration(age.olderThanMs)} ago or earlier` : ""}` : ""})\n`);
            if (r.nextPage) io.out(`(more: --page ${r.nextPage})\n`);
          }
          return ExitCode.ok;
        }
        const gid = positionals[0]!;
        const t = verb === "show" ? await co.get({ gid }) : verb === "retry" ? await co.retry({ gid }) : await co.stop({ gid });
        io.out(json ? JSON.stringify(Transaction.toJSON(t), null, 2) + "\n" : describeTx(t));
        return ExitCode.ok;
      } finally {
        co.$close();
      }
    } catch (err) {
      const e = RpcError.from(err);
      io.err(`protomesh tx ${verb}: ${codeName(e.code)}: ${e.rawMessage}\n`);
      return ExitCode.failure;
    } finally {
      await discovery?.close();
    }
  },
};

interface AgeFilter {
  olderThanMs: number;
  unfinished: boolean;
}

/** --older-than, --unfinished and --stuck as the List request's fields; throws a message for a usage error. */
function ageFilter(values: Record<string, string | boolean | undefined>): AgeFilter {
  const stuck = values.stuck as string | undefined;
  const olderThan = values["older-than"] as string | undefined;
  if (stuck !== undefined && olderThan !== undefined) throw new Error("--stuck AGE already sets the age: give --stuck or --older-than, not both");
  const text = stuck ?? olderThan;
  let olderThanMs = 0;
  if (text !== undefined) {
    const flag = stuck !== undefined ? "--stuck" : "--older-than";
    try {
      olderThanMs = Math.round(parseDuration(text));
    } catch {
      throw new Error(`${flag} must be an age such as 30s, 10m, 2h or 1h30m, got "${text}"`);
    }
    if (!Number.isSafeInteger(olderThanMs)) throw new Error(`${flag} "${text}" is too long ago`);
  }
  const unfinished = stuck !== undefined || values.unfinished === true;
  const status = values.status as string | undefined;
  if (unfinished && status && !UNFINISHED.includes(status as TxStatus)) throw new Error(`--status ${status} is final: ${stuck !== undefined ? "--stuck" : "--unfinished"} lists only ${UNFINISHED.join(", ")}`);
  return { olderThanMs, unfinished };
}

function describeTx(t: Transaction): string {
  const at = (ms: number) => (ms ? new Date(ms).toISOString() : "-");
  const lines = [
    `gid        ${t.gid}`,
    `mode       ${t.mode}`,
    `status     ${t.status}`,
    `created    ${at(t.createdAtMs)}   finished ${at(t.finishedAtMs)}`,
    `next round ${t.status === "succeed" || t.status === "failed" ? "-" : at(t.nextAtMs)}   timeout ${at(t.timeoutAtMs)}   rounds ${t.rounds}   owner ${t.owner || "-"}`,
    `last error ${t.lastError || "-"}`,
    "",
    `${"BRANCH".padEnd(7)}${"OP".padEnd(11)}${"STATUS".padEnd(9)}${"CALLS".padStart(5)}  METHOD @ TARGET`,
    ...t.branches.map((b) => `${b.branchId.padEnd(7)}${b.op.padEnd(11)}${b.status.padEnd(9)}${String(b.attempts).padStart(5)}  ${b.method} @ ${b.target}${b.lastError ? `\n${" ".repeat(34)}last error: ${b.lastError}` : ""}`),
  ];
  if (t.attempts.length > 0) {
    lines.push("", "recorded attempts (failed calls, and every notification):");
    for (const a of t.attempts) lines.push(`  ${at(a.atMs)}  ${a.branchId} ${a.op.padEnd(10)} ${codeName(a.code).padEnd(18)} ${a.error}`);
  }
  return lines.join("\n") + "\n";
}

function usage(io: CliIo, message: string): number {
  return printUsageError(io, "tx", message);
}
