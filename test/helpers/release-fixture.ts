/**
 * Two versions of the greeter registered in etcd, each with its own metrics registry and
 * `/metrics` port, for release specs; plus the `protomesh release` command run in-process.
 */
import { Registry } from "prom-client";
import { createServer, RpcError, Status, type Server } from "protomesh";
import { etcdRegistry } from "../../registry/etcd/registry";
import { greeterHandlers } from "../../examples/greeter/service";
import { main } from "../../cli/main";
import type { CliIo } from "../../cli/command";
import { GreeterDefinition } from "./greeter";

export interface VersionedGreeter {
  readonly server: Server;
  readonly instance: { readonly id: string; readonly version: string; readonly address: string };
  readonly metricsPort: number;
}

export interface GreeterFleet {
  readonly instances: VersionedGreeter[];
  /** Instance id → version. */
  readonly versions: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

/** Starts one greeter per entry; `failShare` makes that share of its calls fail with INTERNAL. */
export async function startFleet(endpoints: string[], namespace: string, versions: ReadonlyArray<{ version: string; failShare?: number }>): Promise<GreeterFleet> {
  const registry = etcdRegistry({ endpoints, namespace });
  const instances: VersionedGreeter[] = [];
  for (const [n, v] of versions.entries()) {
    const id = `greeter-${v.version}-${n}`;
    const server = createServer({ name: "greeter", registry, instance: { id, version: v.version }, metrics: { registry: new Registry(), port: 0, host: "127.0.0.1" }, tracing: false });
    const base = greeterHandlers(id);
    let calls = 0;
    server.add(GreeterDefinition, {
      ...base,
      async sayHello(req, ctx) {
        // Every fifth call fails at 20 %: deterministic, so each interval sees the same share.
        if (v.failShare && ++calls % Math.round(1 / v.failShare) === 0) throw new RpcError(Status.INTERNAL, `canary bug in ${id}`);
        return base.sayHello(req, ctx);
      },
    });
    const port = await server.listen("127.0.0.1:0");
    instances.push({ server, instance: { id, version: v.version, address: `127.0.0.1:${port}` }, metricsPort: server.metricsPort! });
  }
  return {
    instances,
    versions: new Map(instances.map((i) => [i.instance.id, i.instance.version])),
    async close() {
      await Promise.all(instances.map((i) => i.server.shutdown({ graceMs: 500 })));
      await registry.close();
    },
  };
}

/** Runs `protomesh release …` against `endpoints`/`namespace`; resolves with the exit code and output. */
export async function release(endpoints: string[], namespace: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { cwd: process.cwd(), env: {}, out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(["release", ...args, "--endpoints", endpoints.join(","), "--namespace", namespace], io);
  return { code, out, err };
}
