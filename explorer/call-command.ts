import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { JsonValue } from "@bufbuild/protobuf";
import { ExitCode, UsageError, type Command } from "../cli/command";
import { dynamicCall } from "../runtime/dynamic-call";
import { COMMON_HELP, COMMON_OPTIONS, deadlineFrom, metadataFrom, parsed, runCommand, type ExplorerIo } from "./command-support";
import { jsonValues } from "./json-values";
import { DEFAULT_REFLECTION_DEADLINE_MS } from "./ls-command";
import { findMethod, splitMethodName } from "./lookup";
import { ReflectionClient } from "./reflection-client";
import { openTarget } from "./target";

const USAGE = `usage: protomesh call <target> <package.Service/Method> [options]

Calls a method with JSON requests and prints each response as one line of
JSON. The method's types come from the server through gRPC reflection.
Requests are JSON objects, one after another (newline-delimited JSON works):
a unary or server-streaming method takes one (none means {}), a client- or
bidi-streaming method takes any number, sent as they are read.

options:
  -d, --data JSON         the request(s); @FILE reads a file, - reads stdin
                          (without -d, stdin is read unless it is a terminal)
      --emit-defaults     print fields that hold their default value too
      --pretty            indent each response
${COMMON_HELP}

On failure the status code name and message go to stderr, and the exit code is 1.

examples:
  protomesh call 127.0.0.1:50051 examples.greeter.v1.Greeter/SayHello -d '{"name":"Ada"}'
  printf '{"name":"a"}\\n{"name":"b"}\\n' | protomesh call etcd:///greeter examples.greeter.v1.Greeter/Chat
  protomesh call 127.0.0.1:50051 examples.greeter.v1.Greeter/SayHello -d @req.json -H x-user:ada --deadline 500
`;

/** `protomesh call`. */
export const callCommand: Command = {
  run: (args, io: ExplorerIo) =>
    runCommand("call", io, async () => {
      const { values, positionals } = parsed(() =>
        parseArgs({
          args,
          options: { ...COMMON_OPTIONS, data: { type: "string", short: "d" }, "emit-defaults": { type: "boolean" }, pretty: { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        }),
      );
      if (values.help) {
        io.out(USAGE);
        return ExitCode.ok;
      }
      const [target, methodName, ...extra] = positionals;
      if (target === undefined || methodName === undefined) throw new UsageError(`missing ${target === undefined ? "<target>" : "<method>"}`);
      if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
      const metadata = metadataFrom(values.header);
      const deadline = deadlineFrom(values.deadline);
      const service = splitMethodName(methodName).service;

      const opened = openTarget(target, io.env);
      const reflection = new ReflectionClient(opened.client, { metadata, deadline: deadline ?? Date.now() + DEFAULT_REFLECTION_DEADLINE_MS });
      const input = new RequestInput(values.data, io);
      try {
        await reflection.loadSymbol(service);
        const registry = reflection.registry();
        const method = findMethod(registry, methodName);
        reflection.close();
        const single = method.methodKind === "unary" || method.methodKind === "server_streaming";
        const requests = input.values(single);
        const indent = values.pretty ? 2 : undefined;
        for await (const response of dynamicCall(opened.client, method, requests, { metadata, deadline, registry, emitDefaults: values["emit-defaults"] === true })) {
          io.out(`${JSON.stringify(response, null, indent)}\n`);
        }
        return ExitCode.ok;
      } finally {
        input.close();
        reflection.close();
        await opened.close();
      }
    }),
};

/** Where the requests come from: `-d` text, a file, or stdin. */
class RequestInput {
  private usesProcessStdin = false;

  constructor(
    private readonly data: string | undefined,
    private readonly io: ExplorerIo,
  ) {}

  values(single: boolean): AsyncIterable<JsonValue> {
    const data = this.data;
    if (data !== undefined && data !== "-") {
      const text = data.startsWith("@") ? readFile(path.resolve(this.io.cwd, data.slice(1))) : data;
      return jsonValues([text]);
    }
    const tty = this.io.stdin ? this.io.stdinIsTTY === true : process.stdin.isTTY === true;
    // Nothing piped in and one request expected: send {} rather than wait at a terminal.
    if (data === undefined && tty && single) return jsonValues([]);
    if (this.io.stdin) return jsonValues(this.io.stdin);
    this.usesProcessStdin = true;
    return jsonValues(process.stdin);
  }

  /** Lets the process exit even when stdin was not read to its end (a call that failed early). */
  close(): void {
    if (this.usesProcessStdin) process.stdin.destroy();
  }
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
