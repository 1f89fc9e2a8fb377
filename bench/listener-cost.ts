/**
 * What protomesh's own listener costs against grpc-js's bindAsync: one grpc-js server and
 * handler, its connections accepted either way; a fresh connection and its first unary call
 * (plaintext and TLS), and sequential calls on one warm connection. Both run in this process,
 * interleaved round by round, so load on the machine hits both alike.
 *
 *   node bin/run.js bench/listener-cost.ts [rounds]
 */
import * as grpc from "@grpc/grpc-js";
import { createJsonLogger } from "protomesh";
import { openListener } from "../runtime/listener";
import { GreeterDefinition } from "../gen/examples/greeter/v1/greeter_protomesh";
import { createTestPki } from "../test/faults/helpers/pki";

const rounds = Number(process.argv[2] ?? 200);
const pki = createTestPki();
const pair = pki.server("bench", ["127.0.0.1", "localhost"]);
const tlsServerCreds = () => grpc.ServerCredentials.createSsl(pki.ca, [{ private_key: pair.key, cert_chain: pair.cert }], false);
const method = Object.values(GreeterDefinition.methods).find((m) => m.localName === "sayHello")!;

/** The same grpc-js server, its connections accepted by protomesh's listener instead of bindAsync. */
async function protomeshServer(tls: boolean): Promise<{ port: number; close(): Promise<void> }> {
  const server = rawService();
  const listener = await openListener({ grpc: server, hosts: ["127.0.0.1"], port: 0, credentials: tls ? tlsServerCreds() : grpc.ServerCredentials.createInsecure(), handshakeTimeoutMs: 5000, maxConnections: 10_000, logger: createJsonLogger({ level: "silent" }) });
  return { port: listener.port, close: async () => { await listener.close(); server.forceShutdown(); } };
}

function rawService(): grpc.Server {
  const server = new grpc.Server();
  server.addService({ sayHello: { ...method, path: method.path, originalName: method.name } as unknown as grpc.MethodDefinition<unknown, unknown> }, {
    sayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { message: `Hello, ${call.request.name}!`, servedBy: "raw" }),
  });
  return server;
}

async function rawServer(tls: boolean): Promise<{ port: number; close(): Promise<void> }> {
  const server = rawService();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", tls ? tlsServerCreds() : grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

function call(client: grpc.Client): Promise<void> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(method.path, method.requestSerialize as (v: unknown) => Buffer, method.responseDeserialize, { name: "x" }, (err) => (err ? reject(err) : resolve())),
  );
}

const creds = (tls: boolean) => (tls ? grpc.credentials.createSsl(pki.ca) : grpc.credentials.createInsecure());

async function firstCallMs(port: number, tls: boolean): Promise<number> {
  const started = performance.now();
  const client = new grpc.Client(`localhost:${port}`, creds(tls));
  await call(client);
  const ms = performance.now() - started;
  client.close();
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const tls of [false, true]) {
    const ours = await protomeshServer(tls);
    const raw = await rawServer(tls);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < rounds; i++) {
      a.push(await firstCallMs(ours.port, tls));
      b.push(await firstCallMs(raw.port, tls));
    }
    rows.push(`| new connection + first call, ${tls ? "TLS" : "plaintext"} | ${median(a).toFixed(2)} ms | ${median(b).toFixed(2)} ms | ${(median(a) / median(b)).toFixed(2)} |`);
    const warm = async (port: number) => {
      const client = new grpc.Client(`localhost:${port}`, creds(tls));
      await call(client);
      const started = performance.now();
      for (let i = 0; i < rounds * 10; i++) await call(client);
      const us = ((performance.now() - started) / (rounds * 10)) * 1000;
      client.close();
      return us;
    };
    const wa: number[] = [];
    const wb: number[] = [];
    for (let i = 0; i < 5; i++) {
      wa.push(await warm(ours.port));
      wb.push(await warm(raw.port));
    }
    rows.push(`| sequential calls on one connection, ${tls ? "TLS" : "plaintext"} | ${median(wa).toFixed(0)} µs/call | ${median(wb).toFixed(0)} µs/call | ${(median(wa) / median(wb)).toFixed(2)} |`);
    await ours.close();
    await raw.close();
  }
  console.log(`| measure (median of ${rounds} connections; 5 runs of ${rounds * 10} calls) | protomesh listener | grpc-js bindAsync | ratio |\n|---|---|---|---|\n${rows.join("\n")}`);
  pki.remove();
}

void main();
