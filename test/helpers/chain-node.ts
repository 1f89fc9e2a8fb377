/**
 * One service of the tracing chain test, run as its own process. Role (CHAIN_ROLE):
 *   A: answers sayHello by calling B and C at the same time;
 *   B: answers sayHello by reading a server stream from D;
 *   C and D: plain greeters (C waits a little so the fan-out overlaps).
 * Tracing is configured only through the standard environment variables. The process
 * prints `READY <port>`, then reads one JSON line `{ "B": addr, "C": addr, "D": addr }`
 * on stdin, and shuts down (flushing spans) when stdin closes.
 */
import { createServer, createClient, type ClientHandle } from "protomesh";
import { setupTracing } from "protomesh/tracing";
import { GreeterDefinition, type GreeterClient } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { greeterHandlers } from "../../examples/greeter/service";

const role = process.env.CHAIN_ROLE ?? "?";
const stopTracing = setupTracing();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const peers: Record<string, GreeterClient & ClientHandle> = {};

const handlers = greeterHandlers(role);
const server = createServer();
server.add(GreeterDefinition, {
  ...handlers,
  async sayHello(req, ctx) {
    if (role === "A") {
      const [b, c] = await Promise.all([peers.B!.sayHello({ name: req.name }), peers.C!.sayHello({ name: req.name })]);
      return { message: `${b.message} + ${c.message}`, servedBy: "A" };
    }
    if (role === "B") {
      const parts: string[] = [];
      for await (const r of peers.D!.streamHellos({ name: req.name, count: 3, intervalMs: 10 })) parts.push(r.servedBy);
      return { message: `B(${parts.join(",")})`, servedBy: "B" };
    }
    if (role === "C") await sleep(60);
    return handlers.sayHello(req, ctx);
  },
});

async function main(): Promise<void> {
  const port = await server.listen("127.0.0.1:0");
  process.stdout.write(`READY ${port}\n`);
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    const nl = buffered.indexOf("\n");
    if (nl < 0) return;
    const addresses = JSON.parse(buffered.slice(0, nl)) as Record<string, string>;
    buffered = buffered.slice(nl + 1);
    for (const [name, address] of Object.entries(addresses)) peers[name] = createClient(GreeterDefinition, address);
    process.stdout.write("WIRED\n");
  });
  process.stdin.on("end", async () => {
    for (const peer of Object.values(peers)) peer.$close();
    await server.shutdown({ graceMs: 500 });
    await stopTracing();
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`chain node ${role} failed: ${String(err)}\n`);
  process.exit(1);
});
