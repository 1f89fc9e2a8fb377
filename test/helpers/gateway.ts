import * as net from "node:net";
import { createServer, type Registrar, type Server } from "protomesh";
import { HttpGreeterDefinition, type HttpGreeterHandlers } from "../../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../../examples/gateway/service";
import { createGateway, type Gateway, type GatewayOptions } from "../../gateway";

export { HttpGreeterDefinition };

/** Starts the HTTP greeter (gRPC) on 127.0.0.1:0. */
export async function startHttpGreeter(overrides: Partial<HttpGreeterHandlers> = {}, servedBy = "g1"): Promise<{ server: Server; address: string }> {
  const server = createServer({});
  server.add(HttpGreeterDefinition, { ...httpGreeterHandlers(servedBy), ...overrides });
  const port = await server.listen("127.0.0.1:0");
  return { server, address: `127.0.0.1:${port}` };
}

/** The HTTP greeter registered in `registry` as `name` with the `version` label, answering as `servedBy`. */
export async function startRegisteredGreeter(registry: Registrar, name: string, servedBy: string, version = "v1"): Promise<Server> {
  const server = createServer({ name, registry, instance: { version } });
  server.add(HttpGreeterDefinition, httpGreeterHandlers(servedBy));
  await server.listen("127.0.0.1:0");
  return server;
}

/** A gateway in front of `address` with the greeter's definitions; resolves with its base URL. */
export async function startGateway(address: string, options: Partial<GatewayOptions> = {}): Promise<{ gateway: Gateway; url: string }> {
  const gateway = await createGateway({ upstreams: [{ target: address, definitions: [HttpGreeterDefinition] }], accessLog: false, ...options });
  const port = await gateway.listen(0);
  return { gateway, url: `http://127.0.0.1:${port}` };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `text` as-is over a socket and reads the whole answer (for requests fetch would refuse to send). */
export function rawHttp(port: number, text: string | Buffer, options: { endAfterWrite?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks).toString("utf8");
      const split = all.indexOf("\r\n\r\n");
      const head = all.slice(0, split).split("\r\n");
      const status = Number(head[0]?.split(" ")[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: split === -1 ? "" : all.slice(split + 4) });
    });
    socket.write(text);
    if (options.endAfterWrite) socket.end();
  });
}
