/**
 * A greeter client that makes one call of each kind.
 * Run: `node bin/run.js examples/greeter/client.ts [target]` (default 127.0.0.1:50051; `etcd:///greeter` with ETCD_ENDPOINTS set).
 */
import { createClient, RpcError } from "protomesh";
import { GreeterDefinition } from "../../gen/examples/greeter/v1/greeter_protomesh";

async function main(): Promise<void> {
  const target = process.argv[2] ?? "127.0.0.1:50051";
  const greeter = createClient(GreeterDefinition, target, { defaultDeadlineMs: 5000 });
  try {
    // Unary
    const reply = await greeter.sayHello({ name: "Ada" });
    console.log("sayHello      →", reply.message, `(${reply.servedBy})`);

    // Server streaming
    for await (const r of greeter.streamHellos({ name: "Grace", count: 3 })) console.log("streamHellos  →", r.message);

    // Client streaming
    const all = await greeter.collectHellos(["Alan", "Barbara", "Edsger"].map((name) => ({ name })));
    console.log("collectHellos →", all.message);

    // Bidirectional streaming
    for await (const r of greeter.chat(["Ken", "Dennis"].map((name) => ({ name })))) console.log("chat          →", r.message);

    // Typed errors
    try {
      await greeter.sayHello({ name: "" });
    } catch (err) {
      if (err instanceof RpcError) console.log("error         →", err.code, err.rawMessage, JSON.stringify(err.details));
      else throw err;
    }
  } finally {
    greeter.$close();
  }
}

main().catch((err) => {
  console.error(`client: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
