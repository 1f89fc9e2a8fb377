/**
 * The greeter behind the gateway CPU benchmark, as its own process (started by
 * `bench/gateway-cpu.ts`), so the CPU the front process spends is the front's alone.
 * Commands: `listen` → the port; `cpu` → this process's CPU time so far (µs).
 */
import { createServer } from "protomesh";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { serveCommands } from "./ipc";

const server = createServer({});
server.add(HttpGreeterDefinition, httpGreeterHandlers("bench"));

serveCommands({
  listen: () => server.listen("127.0.0.1:0"),
  cpu: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
});
