/**
 * A process of the cluster rate-limit bench (`gateway-cluster-limit.ts`), driven over IPC: a
 * gateway in front of the greeter, or a load generator that offers a steady rate to one gateway.
 */
import * as http from "node:http";
import { createGateway, type Gateway } from "../gateway";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { serveCommands } from "./ipc";

let gateway: Gateway | undefined;

serveCommands({
  /** A gateway on a free port, its policy (and so its limit) from etcd, its counters in Redis. */
  async gateway(a: { greeter: string; etcd: string[]; namespace: string; redis: string; redisTimeoutMs: number }) {
    gateway = await createGateway({
      upstreams: [{ target: a.greeter, definitions: [HttpGreeterDefinition] }],
      accessLog: false,
      etcd: { endpoints: a.etcd, namespace: a.namespace },
      env: "bench",
      redis: a.redis,
      redisTimeoutMs: a.redisTimeoutMs,
    });
    return { port: await gateway.listen(0) };
  },

  /** The policy version this gateway applies. */
  version() {
    return { version: gateway?.policy.version ?? -1 };
  },

  /**
   * Offers `rate` requests per second to `port` for `seconds`, open loop: each request leaves at
   * its scheduled time whether or not earlier ones were answered. Reports the answers and how
   * late the schedule ran (a late sender offers bursts, not a steady rate).
   */
  async load(a: { port: number; rate: number; seconds: number; startAt: number }) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    let admitted = 0;
    let refused = 0;
    let failed = 0;
    let maxLagMs = 0;
    /** Wall-clock time (ms since the epoch) of each admitted answer. */
    const admittedAt: number[] = [];
    const fire = () =>
      new Promise<void>((resolve) => {
        const r = http.request({ port: a.port, host: "127.0.0.1", path: "/v1/hello", method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) {
              admitted++;
              admittedAt.push(performance.timeOrigin + performance.now());
            }
            else if (res.statusCode === 429) refused++;
            else failed++;
            resolve();
          });
        });
        r.on("error", () => {
          failed++;
          resolve();
        });
        r.end('{"name":"x"}');
      });
    // All generators start on the same wall-clock instant.
    await new Promise((r) => setTimeout(r, Math.max(0, a.startAt - Date.now())));
    const t0 = performance.now();
    const pending: Promise<void>[] = [];
    const total = Math.round(a.rate * a.seconds);
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / a.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      maxLagMs = Math.max(maxLagMs, performance.now() - due);
      pending.push(fire());
    }
    const sentIn = (performance.now() - t0) / 1000;
    await Promise.all(pending);
    const answeredIn = (performance.now() - t0) / 1000;
    agent.destroy();
    return { offered: total, admitted, refused, failed, sentInSeconds: sentIn, answeredInSeconds: answeredIn, maxLagMs, admittedAt, startedAt: performance.timeOrigin + t0 };
  },

  async close() {
    await gateway?.close();
    return {};
  },
});
