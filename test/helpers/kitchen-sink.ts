import { createServer, RpcError, Status, type Server, type ServerOptions } from "protomesh";
import { KitchenSinkDefinition, type KitchenSinkHandlers } from "../../gen/protomesh/test/v1/kitchen_sink_protomesh";
import { GreeterDefinition } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../../examples/greeter/service";

export { KitchenSinkDefinition };

/**
 * Handlers for the kitchen-sink test service: echoes, in every call kind. `Echo` of id
 * "fail" fails with NOT_FOUND; of id "whoami" answers with the caller's `x-user` metadata as id.
 */
export function kitchenSinkHandlers(): KitchenSinkHandlers {
  return {
    async echo(item, ctx) {
      if (item.id === "fail") throw new RpcError(Status.NOT_FOUND, "no item fail", { id: item.id });
      if (item.id === "whoami") return { id: String(ctx.metadata.get("x-user")[0] ?? "") };
      return item;
    },
    async *list(req) {
      for (let i = 1; i <= req.count; i++) yield { id: `${req.prefix}-${i}` };
    },
    async collect(items) {
      const ids: string[] = [];
      for await (const item of items) ids.push(item.id);
      return { count: ids.length, ids, nothing: {} };
    },
    async *exchange(items) {
      for await (const item of items) yield { ...item, id: `echo:${item.id}` };
    },
    async now() {
      return { seconds: 1_700_000_000, nanos: 5 };
    },
    async describe(labels) {
      return { fields: { ...labels.values, count: Object.keys(labels.values).length } };
    },
    async walk(node) {
      return { ...node, label: `walked:${node.label}` };
    },
    async oldEcho(item) {
      return item;
    },
  };
}

/** A server with the greeter and the kitchen sink on 127.0.0.1:0. */
export async function startBoth(options: ServerOptions = {}): Promise<{ server: Server; address: string }> {
  const server = createServer(options);
  server.add(GreeterDefinition, greeterHandlers("test"));
  server.add(KitchenSinkDefinition, kitchenSinkHandlers());
  const port = await server.listen("127.0.0.1:0");
  return { server, address: `127.0.0.1:${port}` };
}
