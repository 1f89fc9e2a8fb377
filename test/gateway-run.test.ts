import { expect } from "chai";
import { spawn } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { createServer, type Server } from "protomesh";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd";
import { createJsonLogger } from "../runtime/logger";
import { httpGreeterHandlers } from "../examples/gateway/service";
import { HttpGreeterDefinition } from "./helpers/gateway";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { scrape } from "./helpers/prom-text";
import { startOtlpReceiver, type Receiver } from "./helpers/trace-receivers";
import { waitFor } from "./helpers/wait";

const CLI = path.resolve(__dirname, "..", "bin", "protomesh.js");

interface GatewayProc {
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<number | null>;
}

/** `protomesh gateway …` as a real process, its output kept line by line. */
function startGatewayProc(args: string[], env: NodeJS.ProcessEnv): GatewayProc {
  // The default log level: no PROTOMESH_LOG_LEVEL, no --verbose.
  const base = { ...process.env };
  delete base.PROTOMESH_LOG_LEVEL;
  const proc = spawn(process.execPath, [CLI, "gateway", ...args], { env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stdout }).on("line", (l) => stdout.push(l));
  readline.createInterface({ input: proc.stderr }).on("line", (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    stdout,
    stderr,
    exited,
    line: (pattern, timeoutMs = 30_000) =>
      waitFor(
        () => {
          const found = stdout.map((l) => pattern.exec(l)).find((m) => m !== null);
          if (!found && proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}; stderr: ${stderr.join("\n")}`);
          return found;
        },
        { timeoutMs, what: `a stdout line matching ${pattern}` },
      ),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

describe("protomesh gateway as a process: serves, metrics endpoint, access log, tracing", function () {
  this.timeout(90_000);
  const etcd = useEmbeddedEtcd();
  let namespace: string;
  let registry: EtcdRegistry;
  let server: Server;
  let receiver: Receiver;
  const procs: GatewayProc[] = [];

  before(async () => {
    namespace = uniqueNamespace();
    registry = etcdRegistry({ endpoints: etcd.endpoints, namespace, logger: createJsonLogger({ level: "silent" }) });
    server = createServer({ name: "http-greeter", registry });
    server.add(HttpGreeterDefinition, httpGreeterHandlers("run-spec"));
    await server.listen("127.0.0.1:0");
    receiver = await startOtlpReceiver();
  });

  after(async () => {
    for (const p of procs) await p.stop();
    await server?.shutdown();
    await registry?.close();
    await receiver?.close();
  });

  function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: namespace, ...extra };
  }

  it("serves a request; counts it on --metrics-port; prints its JSON access-log line; exports its span", async () => {
    const gw = startGatewayProc(["--port", "0", "--metrics-port", "0"], env({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }));
    procs.push(gw);
    const url = `http://127.0.0.1:${(await gw.line(/^gateway listening on http:\/\/127\.0\.0\.1:(\d+) /))[1]}`;
    const metrics = (await gw.line(/^metrics on http:\/\/[^:]+:(\d+)\/metrics$/))[1];

    const res = await waitFor(
      async () => {
        const r = await fetch(`${url}/v1/hello/Ada`, { headers: { "x-request-id": "run-spec-1" } });
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 20_000, what: "the route served" },
    );
    expect(await res.json()).to.include({ message: "Hello, Ada!", servedBy: "run-spec" });
    expect(res.headers.get("x-request-id")).to.equal("run-spec-1");

    const exposition = await scrape(`http://127.0.0.1:${metrics}/metrics`);
    expect(exposition.value("protomesh_gateway_requests_total", { route: "/v1/hello/{name}", method: "GET", status: "200" })).to.be.at.least(1);
    expect(exposition.find("protomesh_gateway_request_seconds_count", { route: "/v1/hello/{name}", method: "GET" })).to.have.length(1);

    const logged = await waitFor(() => gw.stdout.find((l) => l.includes('"requestId":"run-spec-1"')), { what: "the access-log line" });
    expect(JSON.parse(logged)).to.include({ level: "info", msg: "gateway request", component: "gateway", requestId: "run-spec-1", method: "GET", route: "/v1/hello/{name}", status: 200 });

    await waitFor(() => receiver.spans.find((s) => s.name === "GET /v1/hello/{name}" && s.service === "gateway.default"), { timeoutMs: 15_000, what: "the request's span at the OTLP receiver" });
    expect(await gw.stop()).to.equal(0);
  });

  it("prints its warnings without --verbose: an upstream that went away, on stderr as JSON", async () => {
    // A namespace of its own, whose only instance stops after the gateway derived its routes.
    const ns = uniqueNamespace();
    const reg = etcdRegistry({ endpoints: etcd.endpoints, namespace: ns, logger: createJsonLogger({ level: "silent" }) });
    const up = createServer({ name: "http-greeter", registry: reg });
    up.add(HttpGreeterDefinition, httpGreeterHandlers("going-away"));
    await up.listen("127.0.0.1:0");
    try {
      const gw = startGatewayProc(["--port", "0", "--no-access-log"], env({ PROTOMESH_NAMESPACE: ns }));
      procs.push(gw);
      const url = `http://127.0.0.1:${(await gw.line(/^gateway listening on http:\/\/127\.0\.0\.1:(\d+) /))[1]}`;
      await waitFor(async () => (await fetch(`${url}/v1/hello/Cy`)).status === 200, { timeoutMs: 20_000, what: "the route served" });
      await up.shutdown();
      const failed = await waitFor(
        async () => {
          const r = await fetch(`${url}/v1/hello/Cy`, { headers: { "x-request-id": "run-spec-3" } });
          return r.status === 503 ? r : undefined;
        },
        { timeoutMs: 20_000, what: "a 503 once the only instance is gone" },
      );
      expect(((await failed.json()) as { message: string }).message).to.not.match(/127\.0\.0\.1/);
      const warned = await waitFor(() => gw.stderr.find((l) => l.includes('"run-spec-3"')), { what: "the warning line on stderr" });
      expect(JSON.parse(warned)).to.include({ level: "warn", requestId: "run-spec-3" });
      // Info lines stay behind --verbose.
      expect(gw.stderr.filter((l) => l.includes('"level":"info"'))).to.deep.equal([]);
    } finally {
      await up.shutdown();
      await reg.close();
    }
  });

  it("--no-access-log prints none; without --metrics-port there is no metrics line", async () => {
    const gw = startGatewayProc(["--port", "0", "--no-access-log"], env());
    procs.push(gw);
    const url = `http://127.0.0.1:${(await gw.line(/^gateway listening on http:\/\/127\.0\.0\.1:(\d+) /))[1]}`;
    await waitFor(async () => (await fetch(`${url}/v1/hello/Bo`, { headers: { "x-request-id": "run-spec-2" } })).status === 200, { timeoutMs: 20_000, what: "the route served" });
    expect(await gw.stop()).to.equal(0);
    expect(gw.stdout).to.have.length(1);
    expect(gw.stdout[0]).to.match(/^gateway listening on /);
    expect(gw.stderr).to.deep.equal([]);
  });
});
