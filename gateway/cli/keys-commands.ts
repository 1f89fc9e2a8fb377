import { CliError, ExitCode, UsageError, type CliIo } from "../../cli/command";
import { createEtcdClient, resolveEtcdOptions } from "../../registry/etcd/options";
import { ApiKeyAdmin, keysPrefix } from "../api-keys";
import { etcdFlags, type GatewayFlags } from "./command";

/** `protomesh gateway keys create|revoke|list`. */
export async function keysCommand(flags: GatewayFlags, args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  const resolved = resolveEtcdOptions(etcdFlags(flags, io));
  const client = createEtcdClient(resolved);
  const admin = new ApiKeyAdmin(client, keysPrefix(resolved.namespace, flags.name ?? "default"));
  try {
    switch (verb) {
      case "create": {
        if (rest.length !== 1 || rest[0].trim() === "") throw new UsageError("keys create takes a NAME (who or what the key is for)");
        const scopes = (flags.scopes ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
        const { key, record } = await admin.create(rest[0], scopes);
        if (flags.json) io.out(`${JSON.stringify({ id: record.id, key, name: record.name, scopes })}\n`);
        else io.out(`id:  ${record.id}\nkey: ${key}\n(the key is shown only now; the gateway keeps its hash)\n`);
        return ExitCode.ok;
      }
      case "revoke": {
        if (rest.length !== 1) throw new UsageError("keys revoke takes an ID");
        if (!(await admin.revoke(rest[0]))) throw new CliError(`no key ${rest[0]} (protomesh gateway keys list shows the ids)`);
        io.out(`key ${rest[0]} revoked\n`);
        return ExitCode.ok;
      }
      case "list": {
        const list = await admin.list();
        if (flags.json) io.out(`${JSON.stringify(list.map(({ hash: _hash, ...r }) => r))}\n`);
        else for (const r of list) io.out(`${r.id}  ${r.createdAt}  ${r.name}${r.scopes.length ? `  [${r.scopes.join(", ")}]` : ""}\n`);
        return ExitCode.ok;
      }
      default:
        throw new UsageError(verb === undefined ? "keys needs a command: create, revoke or list" : `unknown keys command "${verb}"`);
    }
  } finally {
    client.close();
  }
}
