import { parseArgs } from "node:util";
import { ExitCode, UsageError, type Command } from "../cli/command";
import { RpcError, Status } from "../runtime/errors";
import { COMMON_HELP, COMMON_OPTIONS, deadlineFrom, metadataFrom, parsed, runCommand, type ExplorerIo } from "./command-support";
import { DEFAULT_REFLECTION_DEADLINE_MS } from "./ls-command";
import { jsonTemplate } from "./json-template";
import { findSymbol, type Symbol } from "./lookup";
import { enumText, enumValueText, fieldText, messageText, methodText, serviceText } from "./proto-text";
import { ReflectionClient } from "./reflection-client";
import { openTarget } from "./target";

const USAGE = `usage: protomesh describe <target> [symbol] [options]

Prints services, methods, messages and enums as .proto source with their
comments, learned through gRPC reflection. Without a symbol: every service.

options:
  -t, --template          for a message (or a method's request): a JSON request to start from
${COMMON_HELP}

examples:
  protomesh describe 127.0.0.1:50051 examples.greeter.v1.Greeter
  protomesh describe etcd:///greeter examples.greeter.v1.HelloRequest --template
`;

/** `protomesh describe`. */
export const describeCommand: Command = {
  run: (args, io: ExplorerIo) =>
    runCommand("describe", io, async () => {
      const { values, positionals } = parsed(() => parseArgs({ args, options: { ...COMMON_OPTIONS, template: { type: "boolean", short: "t" } }, strict: true, allowPositionals: true }));
      if (values.help) {
        io.out(USAGE);
        return ExitCode.ok;
      }
      const [target, symbol, ...extra] = positionals;
      if (target === undefined) throw new UsageError("missing <target>");
      if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
      const opened = openTarget(target, io.env);
      const reflection = new ReflectionClient(opened.client, { metadata: metadataFrom(values.header), deadline: deadlineFrom(values.deadline, DEFAULT_REFLECTION_DEADLINE_MS) });
      try {
        const symbols = symbol === undefined ? await reflection.listServices() : [symbol.replace(/^\./, "")];
        const blocks: string[] = [];
        for (const name of symbols) {
          await reflection.loadSymbol(name);
          const found = findSymbol(reflection.registry(), name);
          if (!found) throw new RpcError(Status.NOT_FOUND, `symbol not found: ${name}`);
          blocks.push(describe(name, found, values.template === true));
        }
        io.out(`${blocks.join("\n\n")}\n`);
        return ExitCode.ok;
      } finally {
        reflection.close();
        await opened.close();
      }
    }),
};

function describe(name: string, found: Symbol, template: boolean): string {
  const withTemplate = (text: string, message: Parameters<typeof jsonTemplate>[0]) =>
    template ? `${text}\n\nJSON template for ${message.typeName}:\n${JSON.stringify(jsonTemplate(message), null, 2)}` : text;
  switch (found.kind) {
    case "service":
      return `${name} is a service:\n${serviceText(found)}`;
    case "rpc":
      return withTemplate(`${name} is a method:\n${methodText(found)}`, found.input);
    case "message":
      return withTemplate(`${name} is a message:\n${messageText(found)}`, found);
    case "enum":
      return `${name} is an enum:\n${enumText(found)}`;
    case "field":
      return `${name} is a field:\n${fieldText(found)}`;
    case "enum_value":
      return `${name} is an enum value of ${found.parent.typeName}:\n${enumValueText(found)}`;
    case "oneof":
      return `${name} is a oneof of ${found.parent.typeName} with fields ${found.fields.map((f) => f.name).join(", ")}`;
    case "extension":
      return `${name} is an extension of ${found.extendee.typeName} (field ${found.number})`;
  }
}
