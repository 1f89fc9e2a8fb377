import { expect } from "chai";
import { Registry } from "prom-client";
import { serveMetrics, type MetricsEndpoint } from "protomesh";

describe("metrics: the endpoint reports where it really listens", () => {
  const endpoints: MetricsEndpoint[] = [];
  afterEach(() => Promise.all(endpoints.splice(0).map((e) => e.close())));

  async function open(options: Parameters<typeof serveMetrics>[0]): Promise<MetricsEndpoint> {
    const endpoint = await serveMetrics({ registries: [new Registry()], processMetrics: false, ...options });
    endpoints.push(endpoint);
    return endpoint;
  }

  it("serveMetrics({}) binds every interface and says so: http://0.0.0.0:PORT/metrics", async () => {
    const endpoint = await open({});
    expect(endpoint.host).to.equal("0.0.0.0");
    expect(endpoint.url).to.equal(`http://0.0.0.0:${endpoint.port}/metrics`);
    const res = await fetch(`http://127.0.0.1:${endpoint.port}/metrics`);
    expect(res.status).to.equal(200);
  });

  it("a loopback host gives a loopback URL that answers", async () => {
    const endpoint = await open({ host: "127.0.0.1" });
    expect(endpoint.url).to.equal(`http://127.0.0.1:${endpoint.port}/metrics`);
    expect((await fetch(endpoint.url)).status).to.equal(200);
  });

  it("a host name shows the address it was bound to", async () => {
    const endpoint = await open({ host: "localhost", path: "/m" });
    expect(endpoint.url).to.match(new RegExp(`^http://(127\\.0\\.0\\.1|\\[::1\\]):${endpoint.port}/m$`));
    expect((await fetch(endpoint.url)).status).to.equal(200);
  });
});
