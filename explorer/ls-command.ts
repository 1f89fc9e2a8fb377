import { parseArgs } from "node:util";
import { ExitCode, UsageError, type Command } from "../cli/command";
import { RpcError, Status } from "../runtime/errors";
import { methodKindLabel, methodSignature } from "../runtime/descriptor-info";
import { COMMON_HELP, COMMON_OPTIONS, deadlineFrom, metadataFrom, parsed, runCommand, type ExplorerIo } from "./command-support";
import { ReflectionClient } from "./reflection-client";
import { openTarget } from "./target";

const USAGE = `usage: protomesh ls <target> [service] [options]

Lists the services a server offers (through gRPC reflection), or the methods
of one service.

options:
  -l, --long              with a service: each method's signature and call kind
${COMMON_HELP}

examples:
  protomesh ls 127.0.0.1:50051
  protomesh ls etcd:///greeter examples.greeter.v1.Greeter --long
`;

/** The reflection conversation is short; without --deadline it gets this long. */
export const DEFAULT_REFLECTION_DEADLINE_MS = 10_000;

/** `protomesh ls`. */
export const lsCommand: Command = {
  run: (args, io: ExplorerIo) =>
    runCommand("ls", io, async () => {
      const { values, positionals } = parsed(() => parseArgs({ args, options: { ...COMMON_OPTIONS, long: { type: "boolean", short: "l" } }, strict: true, allowPositionals: true }));
      if (values.help) {
        io.out(USAGE);
        return ExitCode.ok;
      }
      const [target, service, ...extra] = positionals;
      if (target === undefined) throw new UsageError("missing <target>");
      if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
      const metadata = metadataFrom(values.header);
      const deadline = deadlineFrom(values.deadline, DEFAULT_REFLECTION_DEADLINE_MS);
      const opened = openTarget(target, io.env);
      const reflection = new ReflectionClient(opened.client, { metadata, deadline });
      try {
        if (service === undefined) {
          for (const name of await reflection.listServices()) io.out(`${name}\n`);
          return ExitCode.ok;
        }
        await reflection.loadSymbol(service);
        const desc = reflection.registry().getService(service.replace(/^\./, ""));
        if (!desc) throw new RpcError(Status.NOT_FOUND, `${service} is not a service`);
        for (const method of desc.methods) {
          io.out(values.long ? `${methodSignature(method)};  // ${methodKindLabel(method)}\n` : `${desc.typeName}.${method.name}\n`);
        }
        return ExitCode.ok;
      } finally {
        reflection.close();
        await opened.close();
      }
    }),
};
