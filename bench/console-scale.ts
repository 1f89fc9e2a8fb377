/**
 * The admin console with 10,000 instances across 200 services in a real etcd:
 * time to first render of the Services page, time for a new registration to
 * appear on it, time for a server-side filter to answer, and the console
 * process's memory. `node bin/run.js bench/console-scale.ts [--instances N] [--services N] [--runs N]`.
 *
 * Instances are written as registry entries (the value format servers write),
 * under one lease per service, so the console sees exactly what 10,000
 * registered servers would put there without running 10,000 processes.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { Etcd3 } from "etcd3";
import { startEmbeddedEtcd } from "protomesh/registry";
import { launchBrowser } from "../test/helpers/browser";

const ROOT = path.join(__dirname, "..");
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const INSTANCES = arg("instances", 10_000);
const SERVICES = arg("services", 200);
const RUNS = arg("runs", 5);
const NAMESPACE = "bench";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

function instanceValue(service: string, id: string, n: number): string {
  return JSON.stringify({ id, service, address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:50051`, version: `1.${n % 7}.0`, zone: `zone-${n % 3}`, weight: 1, metadata: { team: `t${n % 11}` }, startedAt: Date.now() });
}

async function main(): Promise<void> {
  const etcd = await startEmbeddedEtcd();
  const client = new Etcd3({ hosts: etcd.endpoints, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 10_000 }) });
  const started = Date.now();
  const leases: string[] = [];
  for (let s = 0; s < SERVICES; s++) leases.push((await client.leaseClient.leaseGrant({ TTL: 3600 })).ID);
  const puts: { key: string; value: string; lease: string }[] = [];
  for (let n = 0; n < INSTANCES; n++) {
    const service = `svc-${String(n % SERVICES).padStart(3, "0")}`;
    const id = `inst-${String(n).padStart(5, "0")}`;
    puts.push({ key: `/protomesh/${NAMESPACE}/services/${service}/${id}`, value: instanceValue(service, id, n), lease: leases[n % SERVICES]! });
  }
  for (let i = 0; i < puts.length; i += 100) {
    await client.kv.txn({ success: puts.slice(i, i + 100).map((p) => ({ request_put: { key: Buffer.from(p.key), value: Buffer.from(p.value), lease: p.lease } })) });
  }
  const progress = (what: string) => process.stderr.write(`[console bench +${((Date.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
  progress(`wrote ${INSTANCES} instances across ${SERVICES} services in ${Date.now() - started} ms\n`);

  const child = spawn(process.execPath, [path.join(ROOT, "bin", "protomesh.js"), "console", "--port", "0", "--no-receiver", "--protos", ROOT], {
    env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: NAMESPACE, PROTOMESH_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.once("exit", () => child.kill("SIGTERM"));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = String((await lines.next()).value);
  const url = /serving (http:\/\/\S+)/.exec(first)?.[1];
  progress(`console up at ${url}`);
  if (!url) throw new Error(`console did not start: ${first}`);
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

  const browser = await launchBrowser();
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1400, height: 900 });
  const cpuMs = () => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  };
  const firstRender: number[] = [];
  const renderCpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    await page.goto("about:blank");
    const cpu0 = cpuMs();
    const t0 = performance.now();
    await page.goto(`${url}#/services`);
    await page.waitForFunction(
      (want) => {
        const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
        return doc.querySelector('[data-testid="instance-total"]')?.textContent === `${want} instances` && doc.querySelector(".instance-row") !== null;
      },
      INSTANCES,
      { timeout: 30_000 },
    );
    firstRender.push(performance.now() - t0);
    renderCpu.push(cpuMs() - cpu0);
    progress(`first render ${firstRender.at(-1)!.toFixed(0)} ms`);
  }
  const domRows = await page.locator(".instance-row").count();
  if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: path.join(ROOT, "docs", "console", "services-10k.png") });

  const filterMs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const needle = `inst-0${r}1`;
    const t0 = performance.now();
    await page.locator("#instance-filter").fill(needle);
    await page.waitForFunction(
      (n) => {
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ getAttribute(a: string): string | null }> } }).document;
        const rows = Array.from(doc.querySelectorAll(".instance-row"));
        return rows.length > 0 && rows.every((row) => (row.getAttribute("data-id") ?? "").includes(n));
      },
      needle,
      { timeout: 30_000 },
    );
    filterMs.push(performance.now() - t0);
    progress(`filter ${filterMs.at(-1)!.toFixed(0)} ms`);
  }

  const appearMs: number[] = [];
  await page.locator("#instance-filter").fill("bench-new");
  for (let r = 0; r < RUNS; r++) {
    const id = `bench-new-${r}`;
    const service = "svc-007";
    const t0 = performance.now();
    await client.put(`/protomesh/${NAMESPACE}/services/${service}/${id}`).value(instanceValue(service, id, 70_000 + r)).lease(leases[7]!).exec();
    await page.locator(`.instance-row[data-id="${id}"]`).waitFor({ timeout: 30_000 });
    appearMs.push(performance.now() - t0);
    progress(`registration visible ${appearMs.at(-1)!.toFixed(0)} ms`);
  }
  // The same change seen by the console's API alone (no browser): etcd put → listed by GET /api/instances.
  const session = await fetch(`${url}api/session`);
  const cookie = session.headers.get("set-cookie")!.split(";")[0]!;
  const apiMs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const id = `bench-api-${r}`;
    const t0 = performance.now();
    await client.put(`/protomesh/${NAMESPACE}/services/svc-008/${id}`).value(instanceValue("svc-008", id, 80_000 + r)).lease(leases[8]!).exec();
    for (;;) {
      const res = (await (await fetch(`${url}api/instances?q=${id}`, { headers: { cookie } })).json()) as { total: number };
      if (res.total === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    apiMs.push(performance.now() - t0);
  }
  const rss = rssMb();

  const load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  const report = [
    `Console at scale: ${INSTANCES} instances across ${SERVICES} services (etcd ${etcd.endpoints.length} member, loopback), ${os.cpus().length} cores, load average ${load} (the machine was busy with other work)`,
    `- first render of the Services page (navigation → first rows and the total shown): ${fmt(firstRender)}`,
    `- console CPU time spent serving one first render (assets, session, services, first instance pages; 10 ms resolution): ${fmt(renderCpu)}`,
    `- a new registration visible on the page (etcd put → row in the browser): ${fmt(appearMs)}`,
    `- the same, seen by the console's API without a browser (etcd put → GET /api/instances lists it): ${fmt(apiMs)}`,
    `- server-side filter (typing → only matching rows shown): ${fmt(filterMs)}`,
    `- rows in the DOM with ${INSTANCES} instances: ${domRows}`,
    `- console process memory (RSS) after the runs: ${rss.toFixed(0)} MiB`,
  ].join("\n");
  process.stdout.write(report + "\n");

  await browser.close();
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  client.close();
  await etcd.stop();
}

main().catch((err) => {
  process.stderr.write(`console bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
