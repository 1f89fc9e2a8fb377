/**
 * A greeter server. Run: `node bin/run.js examples/greeter/server.ts [--port 50051]`.
 * With ETCD_ENDPOINTS set it also registers in etcd as `greeter`.
 */
import { createServer } from "protomesh";
import { etcdRegistry } from "protomesh";
import { GreeterDefinition } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "./service";

async function main(): Promise<void> {
  const portArg = process.argv.indexOf("--port");
  const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 50051;
  const registry = process.env.ETCD_ENDPOINTS ? etcdRegistry({}) : undefined;
  const server = createServer({ name: "greeter", registry });
  server.add(GreeterDefinition, greeterHandlers(`greeter@${process.pid}`));
  const bound = await server.listen(`127.0.0.1:${port}`);
  console.log(`greeter listening on 127.0.0.1:${bound}${registry ? " (registered in etcd as greeter)" : ""}`);
  const stop = async () => {
    await server.shutdown({ graceMs: 5000 });
    await registry?.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((err) => {
  console.error(`greeter: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
