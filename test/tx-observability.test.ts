import { expect } from "chai";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { Registry } from "prom-client";
import { setupTracing, type TracingHandle } from "protomesh/tracing";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { usePostgres } from "./helpers/postgres";
import { expectInvariant, startWorld, type World } from "./helpers/transfer-world";
import { branchMetadata, createTxClient } from "../transaction";

/** Waits until `pred` holds over the finished spans (exports are asynchronous). */
async function spansUntil(exporter: InMemorySpanExporter, pred: (s: ReadableSpan[]) => boolean): Promise<ReadableSpan[]> {
  const until = Date.now() + 20_000;
  for (;;) {
    const spans = exporter.getFinishedSpans();
    if (pred(spans)) return spans;
    if (Date.now() > until) throw new Error(`spans never matched: ${spans.map((s) => s.name).join(", ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of one sample of a scraped metric (0 when the series does not exist). */
async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const json = await registry.getMetricsAsJSON();
  const metric = json.find((m) => m.name === name.replace(/_(count|sum|bucket)$/, ""));
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
  const hit = values.find((v) => (v.metricName ?? metric?.name) === name && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x));
  return hit?.value ?? 0;
}

describe("transactions: traces and metrics of TCC transfers (in-process SDK, Postgres, etcd)", function () {
  this.timeout(120_000);
  const pg = usePostgres();
  const etcd = useEmbeddedEtcd();
  let w: World;
  let exporter: InMemorySpanExporter;
  let stopTracing: TracingHandle;
  const registry = new Registry();

  before(async () => {
    exporter = new InMemorySpanExporter();
    stopTracing = setupTracing({ serviceName: "tx-observability", exporter, exportDelayMs: 1 });
    w = await startWorld(pg.server, etcd.endpoints, uniqueNamespace(), "obs");
    pg.beforeStop(() => w.close());
    // Two instances on one store (and one registry of metrics): either may drive a transaction.
    await w.startCoordinator({ metricsRegistry: registry });
    await w.startCoordinator({ metricsRegistry: registry });
  });
  after(async () => {
    await stopTracing?.();
  });

  it("makes one trace: the caller's span is the parent of the Try calls and of the coordinator's Confirm calls", async () => {
    exporter.reset();
    const tracer = trace.getTracer("tx-observability-test");
    let rootTrace = "";
    let rootSpan = "";
    let gid = "";
    await tracer.startActiveSpan("transfer", async (root) => {
      rootTrace = root.spanContext().traceId;
      rootSpan = root.spanContext().spanId;
      const { outcome } = await w.tx.tcc(async (t) => {
        gid = t.gid;
        await t.call(w.a, "debit", { account: "alice", amount: 10 });
        await t.call(w.b, "credit", { account: "bob", amount: 10 });
      });
      expect(outcome.status).to.equal("succeed");
      root.end();
    });
    const isConfirm = (s: ReadableSpan) => s.name.startsWith("tx confirm ");
    // Two coordinator Confirm spans, and the banks' server spans under them.
    const spans = await spansUntil(exporter, (all) => all.filter(isConfirm).length === 2 && all.filter((s) => s.kind === SpanKind.SERVER && /\/Confirm/.test(s.name)).length === 2);
    const confirms = spans.filter(isConfirm);
    for (const c of confirms) {
      expect(c.kind).to.equal(SpanKind.CLIENT);
      expect(c.spanContext().traceId, c.name).to.equal(rootTrace);
      expect(c.parentSpanContext?.spanId, c.name).to.equal(rootSpan);
      expect(c.attributes).to.include({ "tx.gid": gid, "tx.op": "confirm", "rpc.grpc.status_code": 0 });
    }
    expect(confirms.map((c) => c.attributes["tx.branch"]).sort()).to.deep.equal(["01", "02"]);
    // The participants' Confirm handlers run in spans whose parent is the coordinator's call.
    const confirmServers = spans.filter((s) => s.kind === SpanKind.SERVER && /\/Confirm/.test(s.name));
    for (const s of confirmServers) {
      expect(s.spanContext().traceId).to.equal(rootTrace);
      expect(confirms.map((c) => c.spanContext().spanId)).to.include(s.parentSpanContext?.spanId);
    }
    // The Try calls are the caller's own client calls, children of its span, in the same trace.
    const tries = spans.filter((s) => s.kind === SpanKind.CLIENT && /\/Try(Debit|Credit)$/.test(s.name));
    expect(tries, spans.map((s) => s.name).join(", ")).to.have.length(2);
    for (const t of tries) {
      expect(t.spanContext().traceId).to.equal(rootTrace);
      expect(t.parentSpanContext?.spanId).to.equal(rootSpan);
    }
    // Nothing of this transaction left the trace.
    const ofGid = spans.filter((s) => s.attributes["tx.gid"] === gid);
    expect(ofGid.every((s) => s.spanContext().traceId === rootTrace)).to.equal(true);
  });

  it("counts committed and rolled-back transactions by mode and status, and their branch calls", async () => {
    // Counters are cumulative: measure what this test adds on top of the previous one.
    const before = {
      succeed: await sample(registry, "protomesh_tx_finished_total", { mode: "tcc", status: "succeed" }),
      failed: await sample(registry, "protomesh_tx_finished_total", { mode: "tcc", status: "failed" }),
      confirms: await sample(registry, "protomesh_tx_branch_calls_total", { op: "confirm", verdict: "success" }),
      cancels: await sample(registry, "protomesh_tx_branch_calls_total", { op: "cancel", verdict: "success" }),
      durations: await sample(registry, "protomesh_tx_duration_seconds_count", { mode: "tcc", status: "succeed" }),
      failedDurations: await sample(registry, "protomesh_tx_duration_seconds_count", { mode: "tcc", status: "failed" }),
      callSeconds: await sample(registry, "protomesh_tx_branch_call_seconds_count", { op: "confirm" }),
    };
    const N = 3;
    const M = 2;
    for (let i = 0; i < N; i++) {
      const { outcome } = await w.tx.tcc(async (t) => {
        await t.call(w.a, "debit", { account: "alice", amount: 7 });
        await t.call(w.b, "credit", { account: "bob", amount: 7 });
      });
      expect(outcome.status).to.equal("succeed");
    }
    for (let i = 0; i < M; i++) {
      const failed = await w.tx
        .tcc(async (t) => {
          await t.call(w.b, "credit", { account: "bob", amount: 3 });
          await t.call(w.a, "debit", { account: "alice", amount: 10_000_000 }); // more than alice has
        })
        .then(() => false, () => true);
      expect(failed).to.equal(true);
    }
    expect((await sample(registry, "protomesh_tx_finished_total", { mode: "tcc", status: "succeed" })) - before.succeed).to.equal(N);
    expect((await sample(registry, "protomesh_tx_finished_total", { mode: "tcc", status: "failed" })) - before.failed).to.equal(M);
    expect((await sample(registry, "protomesh_tx_duration_seconds_count", { mode: "tcc", status: "succeed" })) - before.durations).to.equal(N);
    expect((await sample(registry, "protomesh_tx_duration_seconds_count", { mode: "tcc", status: "failed" })) - before.failedDurations).to.equal(M);
    // Every branch is confirmed (or cancelled) successfully exactly once, whatever retries happened.
    expect((await sample(registry, "protomesh_tx_branch_calls_total", { op: "confirm", verdict: "success" })) - before.confirms).to.equal(2 * N);
    expect((await sample(registry, "protomesh_tx_branch_calls_total", { op: "cancel", verdict: "success" })) - before.cancels).to.equal(2 * M);
    expect((await sample(registry, "protomesh_tx_branch_call_seconds_count", { op: "confirm" })) - before.callSeconds).to.be.at.least(2 * N);
    expect(await sample(registry, "protomesh_tx_rounds_total", { mode: "tcc" })).to.be.at.least(N + M + 1);
    // And the scrape in Prometheus' text format carries the same series.
    const text = await registry.metrics();
    expect(text).to.match(/protomesh_tx_finished_total\{mode="tcc",status="succeed"\} \d+/);
    expect(text).to.match(/protomesh_tx_finished_total\{mode="tcc",status="failed"\} \d+/);
    await expectInvariant(w);
  });

  it("keeps one trace when another coordinator instance drives the transaction: the one that opened it is gone before the Submit", async () => {
    exporter.reset();
    const [opener, driver] = w.coordinators as [typeof w.coordinators[0], typeof w.coordinators[0]];
    const viaOpener = createTxClient({ coordinator: opener.server.address! });
    const viaDriver = createTxClient({ coordinator: driver.server.address! });
    try {
      const tracer = trace.getTracer("tx-observability-test");
      const gid = `obs-handover-${Date.now().toString(36)}`;
      let rootTrace = "";
      let rootSpan = "";
      await tracer.startActiveSpan("transfer", async (root) => {
        rootTrace = root.spanContext().traceId;
        rootSpan = root.spanContext().spanId;
        const carrier: Record<string, string> = {};
        propagation.inject(context.active(), carrier);
        // The Try phase, on the first instance: it stores the caller's traceparent with the transaction.
        for (const [id, p, name, account] of [["01", w.a, "Debit", "alice"], ["02", w.b, "Credit", "bob"]] as const) {
          const confirm = p.method(`confirm${name}`);
          const cancel = p.method(`cancel${name}`);
          const leg = { account, amount: 4 };
          await viaOpener.coordinator.registerBranch({
            gid,
            open: id === "01",
            options: { timeoutMs: 60_000 },
            traceparent: carrier.traceparent!,
            ops: [
              { branchId: id, op: "confirm", target: p.target, method: confirm.path, payload: confirm.requestSerialize(leg) },
              { branchId: id, op: "cancel", target: p.target, method: cancel.path, payload: cancel.requestSerialize(leg) },
            ],
          });
          const client = p.client() as unknown as Record<string, (r: unknown, o: object) => Promise<unknown>>;
          await client[`try${name}`]!(leg, { metadata: branchMetadata({ mode: "tcc", gid, branchId: id, op: "try" }) });
        }
        root.end();
      });
      // That instance goes away; the other one, outside the caller's span, commits and confirms.
      await opener.shutdown();
      const submitted = await viaDriver.coordinator.submit({ gid, wait: true });
      expect(submitted.status).to.equal("succeed");
      const isConfirm = (s: ReadableSpan) => s.name.startsWith("tx confirm ") && s.attributes["tx.gid"] === gid;
      const spans = await spansUntil(exporter, (all) => all.filter(isConfirm).length === 2 && all.filter((s) => s.kind === SpanKind.SERVER && /\/Confirm/.test(s.name)).length === 2);
      for (const c of spans.filter(isConfirm)) {
        expect(c.spanContext().traceId, c.name).to.equal(rootTrace);
        expect(c.parentSpanContext?.spanId, c.name).to.equal(rootSpan);
      }
      for (const s of spans.filter((x) => x.kind === SpanKind.SERVER && /\/Confirm/.test(x.name))) expect(s.spanContext().traceId).to.equal(rootTrace);
      await expectInvariant(w);
    } finally {
      viaOpener.close();
      viaDriver.close();
    }
  });
});
