import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { CliError, ExitCode, UsageError, type CliIo } from "../../cli/command";
import { PolicyStore } from "../policy-store";
import { validatePolicy } from "../policy-validate";
import { etcdFlags, type GatewayFlags } from "./command";

/** `protomesh gateway policy get|set|apply|history|rollback`. */
export async function policyCommand(flags: GatewayFlags, args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  const store = new PolicyStore({ ...etcdFlags(flags, io), gateway: flags.name, env: flags.env ?? io.env.PROTOMESH_ENV });
  try {
    switch (verb) {
      case "get": {
        const rec = flags.version !== undefined ? await store.store.get(positiveInt(flags.version, "--version")) : await store.store.current();
        if (!rec) throw new CliError("no policy written yet (protomesh gateway policy apply -f FILE)");
        io.out(flags.json ? `${JSON.stringify({ version: rec.version, policy: rec.value })}\n` : `# version ${rec.version} by ${rec.author} at ${rec.at}${rec.comment ? ` — ${rec.comment}` : ""}\n${JSON.stringify(rec.value, null, 2)}\n`);
        return ExitCode.ok;
      }
      case "set":
      case "apply": {
        let doc: unknown;
        if (verb === "set") {
          if (rest.length !== 1) throw new UsageError("policy set takes one JSON document");
          doc = parseDoc(rest[0], "the argument", false);
        } else {
          if (!flags.file) throw new UsageError("policy apply needs -f FILE");
          const file = path.resolve(io.cwd, flags.file);
          let text: string;
          try {
            text = fs.readFileSync(file, "utf8");
          } catch (err) {
            throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
          }
          doc = parseDoc(text, file, /\.ya?ml$/i.test(file));
        }
        validatePolicy(doc);
        const rec = await store.write(doc, { comment: flags.comment });
        io.out(`gateway policy version ${rec.version} written\n`);
        return ExitCode.ok;
      }
      case "history": {
        const list = await store.history(flags.limit === undefined ? 20 : positiveInt(flags.limit, "--limit"));
        if (flags.json) io.out(`${JSON.stringify(list.map((r) => ({ version: r.version, author: r.author, at: r.at, comment: r.comment, kind: r.kind })))}\n`);
        else for (const r of list) io.out(`${String(r.version).padStart(5)}  ${r.at}  ${r.author}  ${r.kind}${r.comment ? `  ${r.comment}` : ""}\n`);
        return ExitCode.ok;
      }
      case "rollback": {
        if (rest.length !== 1) throw new UsageError("policy rollback takes a VERSION");
        const rec = await store.rollback(positiveInt(rest[0], "VERSION"), flags.comment);
        io.out(`gateway policy version ${rec.version} written (a copy of version ${rest[0]})\n`);
        return ExitCode.ok;
      }
      default:
        throw new UsageError(verb === undefined ? "policy needs a command: get, set, apply, history or rollback" : `unknown policy command "${verb}"`);
    }
  } finally {
    store.close();
  }
}

function parseDoc(text: string, where: string, yaml: boolean): unknown {
  try {
    return yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new CliError(`${where} is not valid ${yaml ? "YAML" : "JSON"}: ${(err as Error).message.split("\n")[0]}`);
  }
}

function positiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}
