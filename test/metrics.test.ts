import { expect } from "chai";
import { Registry } from "prom-client";
import { RpcError, Status, serveMetrics, registryMetrics, LATENCY_BUCKETS, type Server, type MetricsEndpoint } from "protomesh";
import { startGreeter, greeterClient, collect } from "./helpers/greeter";
import { scrape, httpGet, type Exposition } from "./helpers/prom-text";

const GREETER = "examples.greeter.v1.Greeter";

describe("metrics: Prometheus endpoint after real calls", () => {
  // Separate registries keep these counts free of other suites' calls.
  const serverRegistry = new Registry();
  const clientRegistry = new Registry();
  let server: Server;
  let client: ReturnType<typeof greeterClient>;
  let clientEndpoint: MetricsEndpoint;
  let release: () => void = () => undefined;
  let slowStarted: Promise<void>;
  let markSlowStarted: () => void;

  before(async () => {
    slowStarted = new Promise((r) => (markSlowStarted = r));
    const started = await startGreeter(
      {
        async sayHello(req) {
          if (req.name === "") throw new RpcError(Status.INVALID_ARGUMENT, "name is required");
          if (req.name === "slow") {
            markSlowStarted();
            await new Promise<void>((r) => (release = r));
          }
          return { message: `hi ${req.name}` };
        },
      },
      { metrics: { port: 0, host: "127.0.0.1", registry: serverRegistry, processMetrics: false } },
    );
    server = started.server;
    client = greeterClient(started.address, { metrics: { registry: clientRegistry } });
    clientEndpoint = await serveMetrics({ port: 0, host: "127.0.0.1", registries: [clientRegistry], processMetrics: false });
  });
  after(async () => {
    client.$close();
    await clientEndpoint.close();
    await server.shutdown({ graceMs: 100 });
  });

  const serverUrl = () => `http://127.0.0.1:${server.metricsPort}/metrics`;

  it("opens the endpoint with the server and serves the text format", async () => {
    expect(server.metricsPort).to.be.a("number");
    const res = await httpGet(serverUrl());
    expect(res.status).to.equal(200);
    expect(res.contentType).to.match(/^text\/plain; version=0\.0\.4/);
    expect((await httpGet(serverUrl().replace("/metrics", "/other"))).status).to.equal(404);
  });

  it("counts in-flight calls while they run and returns the gauge to 0", async () => {
    const slow = client.sayHello({ name: "slow" });
    await slowStarted;
    let m = await scrape(serverUrl());
    expect(m.value("grpc_server_in_flight", { grpc_method: "SayHello" })).to.equal(1);
    m = await scrape(clientEndpoint.url);
    expect(m.value("grpc_client_in_flight", { grpc_method: "SayHello" })).to.equal(1);
    release();
    await slow;
    m = await scrape(serverUrl());
    expect(m.value("grpc_server_in_flight", { grpc_method: "SayHello" })).to.equal(0);
  });

  describe("after a mix of calls of every kind", () => {
    let s: Exposition;
    let c: Exposition;

    before(async () => {
      for (const name of ["a", "b", "c"]) await client.sayHello({ name });
      await client.sayHello({ name: "" }).catch(() => undefined);
      expect(await collect(client.streamHellos({ name: "s", count: 4 }))).to.have.length(4);
      await client.collectHellos([{ name: "x" }, { name: "y" }, { name: "z" }]);
      expect(await collect(client.chat([{ name: "p" }, { name: "q" }]))).to.have.length(2);
      s = await scrape(serverUrl());
      c = await scrape(clientEndpoint.url);
    });

    it("counts handled calls by method and status code on both sides", () => {
      for (const [m, prefix] of [[s, "grpc_server"], [c, "grpc_client"]] as const) {
        // Four OK sayHello calls: three here and the slow one before.
        expect(m.value(`${prefix}_handled_total`, { grpc_service: GREETER, grpc_method: "SayHello", grpc_code: "OK", grpc_type: "unary" })).to.equal(4);
        expect(m.value(`${prefix}_handled_total`, { grpc_method: "SayHello", grpc_code: "INVALID_ARGUMENT" })).to.equal(1);
        expect(m.value(`${prefix}_started_total`, { grpc_method: "SayHello" })).to.equal(5);
        expect(m.value(`${prefix}_handled_total`, { grpc_method: "StreamHellos", grpc_code: "OK", grpc_type: "server_stream" })).to.equal(1);
        expect(m.value(`${prefix}_handled_total`, { grpc_method: "CollectHellos", grpc_code: "OK", grpc_type: "client_stream" })).to.equal(1);
        expect(m.value(`${prefix}_handled_total`, { grpc_method: "Chat", grpc_code: "OK", grpc_type: "bidi_stream" })).to.equal(1);
      }
    });

    it("counts stream messages sent and received, mirrored between server and client", () => {
      expect(s.value("grpc_server_msg_sent_total", { grpc_method: "StreamHellos" })).to.equal(4);
      expect(c.value("grpc_client_msg_received_total", { grpc_method: "StreamHellos" })).to.equal(4);
      expect(s.value("grpc_server_msg_received_total", { grpc_method: "CollectHellos" })).to.equal(3);
      expect(c.value("grpc_client_msg_sent_total", { grpc_method: "CollectHellos" })).to.equal(3);
      expect(s.value("grpc_server_msg_received_total", { grpc_method: "Chat" })).to.equal(2);
      expect(s.value("grpc_server_msg_sent_total", { grpc_method: "Chat" })).to.equal(2);
      expect(c.value("grpc_client_msg_sent_total", { grpc_method: "SayHello" })).to.equal(5);
    });

    it("keeps a latency histogram per method with cumulative buckets matching the call count", () => {
      expect(s.types.get("grpc_server_handling_seconds")).to.equal("histogram");
      for (const [m, name] of [[s, "grpc_server_handling_seconds"], [c, "grpc_client_handling_seconds"]] as const) {
        const buckets = m.find(`${name}_bucket`, { grpc_method: "SayHello" });
        expect(buckets.map((b) => b.labels.le)).to.deep.equal([...LATENCY_BUCKETS.map(String), "+Inf"]);
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).to.be.at.least(buckets[i - 1]!.value);
        expect(buckets.at(-1)!.value).to.equal(5);
        expect(m.value(`${name}_count`, { grpc_method: "SayHello" })).to.equal(5);
        // The slow call took a while: its sum is well above zero.
        expect(m.value(`${name}_sum`, { grpc_method: "SayHello" })).to.be.above(0);
      }
    });

    it("ends with nothing in flight", () => {
      for (const sample of s.find("grpc_server_in_flight")) expect(sample.value, sample.labels.grpc_method).to.equal(0);
      for (const sample of c.find("grpc_client_in_flight")) expect(sample.value, sample.labels.grpc_method).to.equal(0);
    });
  });

  describe("afterwards", () => {
    it("counts a stream the client abandons as CANCELLED", async () => {
      for await (const _ of client.streamHellos({ name: "c", count: 100, intervalMs: 5 })) break;
      // The server learns of the cancellation a moment after the client: poll until it has.
      let m = await scrape(serverUrl());
      for (let i = 0; i < 100 && m.value("grpc_server_in_flight", { grpc_method: "StreamHellos" }) > 0; i++) m = await scrape(serverUrl());
      expect(m.value("grpc_server_handled_total", { grpc_method: "StreamHellos", grpc_code: "CANCELLED" })).to.equal(1);
      expect(m.value("grpc_server_in_flight", { grpc_method: "StreamHellos" })).to.equal(0);
      const cm = await scrape(clientEndpoint.url);
      expect(cm.value("grpc_client_handled_total", { grpc_method: "StreamHellos", grpc_code: "CANCELLED" })).to.equal(1);
    });

    it("closes the endpoint when the server shuts down", async () => {
      const { server: other } = await startGreeter({}, { metrics: { port: 0, host: "127.0.0.1", registry: new Registry(), processMetrics: false } });
      const url = `http://127.0.0.1:${other.metricsPort}/metrics`;
      expect((await httpGet(url)).status).to.equal(200);
      await other.shutdown({ graceMs: 100 });
      const err = await httpGet(url).then(() => null, (e: NodeJS.ErrnoException) => e);
      expect(err?.code).to.equal("ECONNREFUSED");
    });
  });
});

describe("metrics: registry gauges", () => {
  it("exposes known instances, lease state and re-registrations as a backend reports them", async () => {
    const registry = new Registry();
    const metrics = registryMetrics(registry);
    expect(registryMetrics(registry)).to.equal(metrics);
    metrics.setKnownInstances("greeter", 3);
    metrics.setLeaseState("greeter", "g-1", "held");
    metrics.setLeaseState("greeter", "g-2", "lost");
    metrics.countReregistration("greeter");
    metrics.countReregistration("greeter");
    const endpoint = await serveMetrics({ port: 0, host: "127.0.0.1", registries: [registry], processMetrics: false });
    try {
      let m = await scrape(endpoint.url);
      expect(m.value("protomesh_registry_known_instances", { service: "greeter" })).to.equal(3);
      expect(m.value("protomesh_registry_lease_held", { service: "greeter", instance: "g-1" })).to.equal(1);
      expect(m.value("protomesh_registry_lease_held", { service: "greeter", instance: "g-2" })).to.equal(0);
      expect(m.value("protomesh_registry_reregistrations_total", { service: "greeter" })).to.equal(2);
      metrics.setLeaseState("greeter", "g-1", "released");
      m = await scrape(endpoint.url);
      expect(m.find("protomesh_registry_lease_held", { instance: "g-1" })).to.have.length(0);
    } finally {
      await endpoint.close();
    }
  });

  it("shares one endpoint between users of the same fixed port until the last one closes", async () => {
    const first = await serveMetrics({ port: 0, host: "127.0.0.1", processMetrics: false });
    const port = first.port;
    await first.close();
    const a = await serveMetrics({ port, host: "127.0.0.1" });
    const b = await serveMetrics({ port, host: "127.0.0.1" });
    await a.close();
    expect((await httpGet(b.url)).status).to.equal(200);
    const m = await scrape(b.url);
    expect(m.types.get("process_cpu_user_seconds_total")).to.equal("counter");
    await b.close();
    const err = await httpGet(b.url).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).to.equal("ECONNREFUSED");
  });
});
