import { createServer, type Server, type ServerOptions, type ClientOptions, createClient } from "protomesh";
import { GreeterDefinition, type GreeterHandlers } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../../examples/greeter/service";

export { GreeterDefinition };

/** Starts a greeter on 127.0.0.1:0 with optional handler overrides; returns the server and its address. */
export async function startGreeter(
  overrides: Partial<GreeterHandlers> = {},
  options: ServerOptions = {},
): Promise<{ server: Server; address: string }> {
  const server = createServer(options);
  server.add(GreeterDefinition, { ...greeterHandlers("test"), ...overrides });
  const port = await server.listen("127.0.0.1:0");
  return { server, address: `127.0.0.1:${port}` };
}

export function greeterClient(address: string, options: ClientOptions = {}) {
  return createClient(GreeterDefinition, address, options);
}

/** Collects an async iterable into an array. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Resolves after `ms` milliseconds. */
export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
