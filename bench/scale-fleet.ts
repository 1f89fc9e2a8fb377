/**
 * Worker: many small raw grpc-js greeter servers in one process, one port each, each
 * answering with its own id. The scale scenario registers them in etcd itself; the
 * servers only need to accept connections and say who they are.
 */
import * as grpc from "@grpc/grpc-js";
import { GreeterService, type GreeterServer } from "../gen/examples/greeter/v1/greeter";
import { serveCommands } from "./ipc";

const servers: grpc.Server[] = [];

function greeterAnswering(id: string): grpc.UntypedServiceImplementation {
  const implementation: Partial<GreeterServer> = {
    sayHello(call, callback) {
      callback(null, { message: call.request.name, servedBy: id, at: undefined });
    },
  };
  return implementation as grpc.UntypedServiceImplementation;
}

serveCommands({
  async start(args: { ids: string[] }): Promise<{ id: string; address: string }[]> {
    const started: { id: string; address: string }[] = [];
    for (const id of args.ids) {
      const server = new grpc.Server();
      server.addService(GreeterService, greeterAnswering(id));
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      servers.push(server);
      started.push({ id, address: `127.0.0.1:${port}` });
    }
    return started;
  },
  stop() {
    for (const server of servers.splice(0)) server.forceShutdown();
  },
});
