/**
 * The gateway example: a private etcd, two HTTP greeter instances (v1 and v2)
 * registered in it, and a gateway that discovers their routes from the
 * `google.api.http` annotations through reflection.
 *
 *   node bin/run.js examples/gateway/main.ts          # then try the commands in examples/gateway/README.md
 *
 * Set ETCD_ENDPOINTS to use your own etcd instead of a private one; otherwise it prints the
 * private one's `export ETCD_ENDPOINTS=…` for `protomesh gateway routes|policy|keys`.
 */
import { createServer, type Server } from "protomesh";
import { etcdRegistry, startEmbeddedEtcd, type EmbeddedEtcd } from "protomesh/registry";
import { HttpGreeterDefinition } from "../../gen/examples/gateway/v1/greeter_http_protomesh";
import { createGateway } from "../../gateway";
import { httpGreeterHandlers } from "./service";

async function main(): Promise<void> {
  let embedded: EmbeddedEtcd | undefined;
  const endpoints = process.env.ETCD_ENDPOINTS?.split(",") ?? (embedded = await startEmbeddedEtcd()).endpoints;
  const registry = etcdRegistry({ endpoints });
  const servers: Server[] = [];
  for (const version of ["v1", "v2"]) {
    const server = createServer({ name: "http-greeter", registry, instance: { version } });
    server.add(HttpGreeterDefinition, httpGreeterHandlers(`greeter-${version}`));
    await server.listen("127.0.0.1:0");
    servers.push(server);
  }
  const gateway = await createGateway({ etcd: { endpoints }, discover: true, unannotated: true, redis: process.env.REDIS_URL });
  const port = await gateway.listen(Number(process.env.PORT ?? 8080));
  process.stdout.write(`gateway on http://127.0.0.1:${port} — etcd ${endpoints.join(",")}\n`);
  if (embedded) process.stdout.write(`For protomesh commands in another terminal: export ETCD_ENDPOINTS=${endpoints.join(",")}\n`);
  for (const r of gateway.routes()) process.stdout.write(`  ${r.httpMethod.padEnd(6)} ${r.template.source}  → ${r.grpcPath}\n`);
  process.stdout.write("Ctrl-C to stop.\n");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await gateway.close();
  for (const s of servers) await s.shutdown();
  await registry.close();
  await embedded?.stop();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
