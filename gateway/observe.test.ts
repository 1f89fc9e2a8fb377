import { expect } from "chai";
import { Counter, Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS } from "../runtime/metrics";
import { gatewayMetrics, recordRequest } from "./observe";

/**
 * `recordRequest` updates prom-client's series in place after finding them once; what a
 * scrape shows must be exactly what prom-client's own `inc`/`observe` would have produced,
 * through resets and removed series too.
 */
describe("gateway metrics", () => {
  function reference(registry: Registry) {
    return {
      requests: new Counter({ name: "protomesh_gateway_requests_total", help: "HTTP requests answered by the gateway, by route template and status.", labelNames: ["route", "method", "status"], registers: [registry] }),
      seconds: new Histogram({ name: "protomesh_gateway_request_seconds", help: "Time to answer an HTTP request, by route template.", labelNames: ["route", "method"], buckets: [...LATENCY_BUCKETS], registers: [registry] }),
    };
  }

  const calls: [string, string, number, number][] = [
    ["/v1/hello", "POST", 200, 0.0003],
    ["/v1/hello", "POST", 200, 0.0005],
    ["/v1/hello", "POST", 200, 0.0007],
    ["/v1/hello", "POST", 404, 0.002],
    ["/v1/hello/{name}", "GET", 200, 0.01],
    ["/v1/hello", "POST", 200, 12],
    ["unmatched", "GET", 404, 0],
    ["/v1/hello", "POST", 200, 10],
    ["/v1/hello", "POST", 503, 2.5],
  ];

  it("scrapes the same as prom-client's own inc and observe", async () => {
    const fast = new Registry();
    const slow = new Registry();
    const m = gatewayMetrics(fast);
    const r = reference(slow);
    // prom-client's own calls are made only to create each series (then it is updated in place).
    let publicCalls = 0;
    const inc = m.requests.inc.bind(m.requests);
    const observe = m.seconds.observe.bind(m.seconds);
    m.requests.inc = ((...a: Parameters<typeof inc>) => (publicCalls++, inc(...a))) as typeof inc;
    m.seconds.observe = ((...a: Parameters<typeof observe>) => (publicCalls++, observe(...a))) as typeof observe;
    for (let round = 0; round < 3; round++) {
      for (const [route, method, status, s] of calls) {
        recordRequest(m, route, method, status, s);
        r.requests.inc({ route, method, status: String(status) });
        r.seconds.observe({ route, method }, s);
      }
      expect(await fast.metrics()).to.equal(await slow.metrics());
    }
    // 5 status series and 3 route series.
    expect(publicCalls).to.equal(8);
  });

  it("keeps counting right after reset() and remove()", async () => {
    const fast = new Registry();
    const slow = new Registry();
    const m = gatewayMetrics(fast);
    const r = reference(slow);
    const both = (route: string, method: string, status: number, s: number) => {
      recordRequest(m, route, method, status, s);
      r.requests.inc({ route, method, status: String(status) });
      r.seconds.observe({ route, method }, s);
    };
    for (const c of calls) both(...c);
    fast.resetMetrics();
    slow.resetMetrics();
    for (const c of calls) both(...c);
    expect(await fast.metrics()).to.equal(await slow.metrics());
    m.requests.remove({ route: "/v1/hello", method: "POST", status: "200" });
    m.seconds.remove({ route: "/v1/hello", method: "POST" });
    r.requests.remove({ route: "/v1/hello", method: "POST", status: "200" });
    r.seconds.remove({ route: "/v1/hello", method: "POST" });
    for (const c of calls) both(...c);
    expect(await fast.metrics()).to.equal(await slow.metrics());
    expect(await fast.metrics()).to.contain('protomesh_gateway_requests_total{route="/v1/hello",method="POST",status="200"} 5');
  });
});
