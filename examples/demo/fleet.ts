/**
 * The demo's second process of services, each registered in etcd under its own name:
 * `http-greeter` (the greeter annotated with google.api.http, what the gateway routes) and the
 * transfer example's two banks, `bank-a` (alice) and `bank-b` (bob), each on its own in-process
 * Postgres (PGlite). One process for the three keeps the demo's start quick; they are still
 * three services, seen as such by the registry, the console and the gateway.
 *
 *   ETCD_ENDPOINTS=… node bin/run.js examples/demo/fleet.ts
 *
 * Prints `fleet ready <name>=<address> …` once all three serve; SIGINT/SIGTERM deregisters them.
 */
import { PGlite } from "@electric-sql/pglite";
import { createServer, etcdRegistry, type Server } from "protomesh";
import { HttpGreeterDefinition } from "../../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpGreeterHandlers } from "../gateway/service";
import { startBank, type Bank } from "../transfer/bank";

/** Opening balances of the demo's accounts, in cents. */
const ACCOUNTS = { "bank-a": { alice: 100_000 }, "bank-b": { bob: 100_000 } } as const;

async function main(): Promise<void> {
  if (!process.env.ETCD_ENDPOINTS) throw new Error("ETCD_ENDPOINTS is required: the fleet registers its services there");
  const registry = etcdRegistry({ ttlSeconds: 5 });
  const servers: Server[] = [];
  const banks: Bank[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all([...servers.map((s) => s.shutdown({ graceMs: 2000 })), ...banks.map((b) => b.close())]);
      await registry.close();
    })());
  process.once("SIGINT", () => void stop().then(() => process.exit(0)));
  process.once("SIGTERM", () => void stop().then(() => process.exit(0)));

  // The databases first: starting PGlite holds the event loop for seconds (WASM compile, initdb),
  // which would starve a registration already under way.
  const [dbA, dbB] = [await PGlite.create(), await PGlite.create()];
  const greeter = createServer({ name: "http-greeter", registry });
  greeter.add(HttpGreeterDefinition, httpGreeterHandlers(`http-greeter@${process.pid}`));
  servers.push(greeter);
  const [, a, b] = await Promise.all([
    greeter.listen("127.0.0.1:0"),
    startBank({ name: "bank-a", database: { pglite: dbA }, accounts: ACCOUNTS["bank-a"], registry }),
    startBank({ name: "bank-b", database: { pglite: dbB }, accounts: ACCOUNTS["bank-b"], registry }),
  ]);
  banks.push(a, b);
  process.stdout.write(`fleet ready http-greeter=${greeter.address} bank-a=${a.server.address} bank-b=${b.server.address}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
