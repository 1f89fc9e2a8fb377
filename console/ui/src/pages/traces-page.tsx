import { useEffect, useState } from "preact/hooks";
import { get, qs, subscribe } from "../api";
import type { PageProps } from "./index";

interface Summary {
  traceId: string;
  rootService: string;
  rootName: string;
  startUs: number;
  durationUs: number;
  spanCount: number;
  errorCount: number;
  services: string[];
}
interface Span {
  spanId: string;
  service: string;
  name: string;
  kind: string;
  startUs: number;
  endUs: number;
  status: string;
  statusMessage: string;
  attributes: Record<string, string | number | boolean>;
}
interface Row {
  span: Span;
  depth: number;
  stage: number;
  parallel: boolean;
  parallelWith: string[];
  offset: number;
  width: number;
  error: boolean;
}
interface Red {
  service: string;
  rate: number;
  errorRatio: number;
  latencyMs: number;
  p95Ms?: number;
  source: string;
}

const ms = (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 2 : 0)} ms`;

export function TracesPage({ info, path }: PageProps) {
  const sources = (info as { sources?: string[] } | undefined)?.sources ?? ["memory"];
  const [form, setForm] = useState({ service: "", method: "", status: "", minMs: "", source: sources[0] ?? "memory" });
  const [traces, setTraces] = useState<Summary[]>([]);
  const [red, setRed] = useState<Red[]>([]);
  const [trace, setTrace] = useState<{ summary: Summary; rows: Row[] } | null>(null);
  const [error, setError] = useState("");

  const search = () =>
    get<{ traces: Summary[] }>(`/api/traces?${qs(form)}`).then(
      (r) => {
        setTraces(r.traces);
        setError("");
      },
      (e: Error) => setError(e.message),
    );
  const openTrace = (id: string) => {
    location.hash = `#/traces/${id}`;
    get<{ summary: Summary; rows: Row[] }>(`/api/traces/${id}?${qs({ source: form.source })}`).then(setTrace, (e: Error) => setError(e.message));
  };

  useEffect(() => {
    void search();
    void get<{ services: Red[] }>("/api/traces/red").then((r) => setRed(r.services));
    if (path[0]) openTrace(path[0]);
  }, []);
  useEffect(() => subscribe("/api/traces/events", "traces", () => void search()), [form]);

  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });

  return (
    <div class="traces">
      <form
        class="trace-search"
        onSubmit={(e) => {
          e.preventDefault();
          void search();
        }}
      >
        <input id="trace-service" placeholder="service" value={form.service} onInput={set("service")} />
        <input id="trace-method" placeholder="method" value={form.method} onInput={set("method")} />
        <select id="trace-status" value={form.status} onChange={set("status")}>
          <option value="">any status</option>
          <option value="error">errors</option>
          <option value="ok">no errors</option>
        </select>
        <input id="trace-min-ms" placeholder="min ms" value={form.minMs} onInput={set("minMs")} size={6} />
        {sources.length > 1 && (
          <select id="trace-source" value={form.source} onChange={set("source")}>
            {sources.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        )}
        <button type="submit">Search</button>
      </form>
      {error && <p class="error">{error}</p>}
      <div class="trace-columns">
        <section>
          <h3>Recent traces</h3>
          <table class="trace-list">
            <tbody>
              {traces.map((t) => (
                <tr key={t.traceId} class={`trace-row ${t.errorCount ? "error" : ""}`} data-trace-id={t.traceId} onClick={() => openTrace(t.traceId)}>
                  <td>{t.rootService}</td>
                  <td>{t.rootName}</td>
                  <td>{ms(t.durationUs)}</td>
                  <td>{t.spanCount} spans</td>
                  <td>{t.errorCount ? `${t.errorCount} errors` : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {traces.length === 0 && <p class="muted">No traces yet. Point exporters at this console: OTEL_EXPORTER_OTLP_ENDPOINT={location.origin}</p>}
          <h3>Rate, errors, duration</h3>
          <table class="red">
            <thead>
              <tr>
                <th>service</th>
                <th>calls/s</th>
                <th>errors</th>
                <th>latency</th>
                <th>from</th>
              </tr>
            </thead>
            <tbody>
              {red.map((r) => (
                <tr key={r.service} class="red-row" data-service={r.service}>
                  <td>{r.service}</td>
                  <td>{r.rate.toFixed(2)}</td>
                  <td>{(r.errorRatio * 100).toFixed(1)} %</td>
                  <td>
                    {r.latencyMs.toFixed(1)} ms{r.p95Ms !== undefined ? ` (p95 ${r.p95Ms.toFixed(1)})` : ""}
                  </td>
                  <td class="muted">{r.source}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        {trace && (
          <section class="trace-detail" data-trace-id={trace.summary.traceId}>
            <h3>
              Trace <code>{trace.summary.traceId}</code> — {ms(trace.summary.durationUs)}, {trace.summary.spanCount} spans
            </h3>
            <p class="muted">Calls side by side with ∥ ran in parallel; the others ran one after another.</p>
            <div class="waterfall">
              {trace.rows.map((r) => (
                <div
                  key={r.span.spanId}
                  class={`span-row ${r.error ? "error" : ""}`}
                  data-span-id={r.span.spanId}
                  data-service={r.span.service}
                  data-kind={r.span.kind}
                  data-name={r.span.name}
                  data-depth={r.depth}
                  data-parallel={String(r.parallel)}
                  data-stage={r.stage}
                >
                  <span class="tree" style={{ paddingLeft: `${r.depth * 16}px` }}>
                    {r.parallel ? <span class="par" title="ran in parallel with its siblings in the same stage">∥</span> : <span class="ser">→</span>}
                    <b>{r.span.service}</b> {r.span.kind} {r.span.name}
                    {r.error && (
                      <span class="status">
                        {" "}
                        {String(r.span.attributes["rpc.grpc.status_code"] ?? "")} {r.span.statusMessage}
                      </span>
                    )}
                  </span>
                  <span class="bar-track">
                    <span class="bar" style={{ left: `${r.offset * 100}%`, width: `${Math.max(r.width * 100, 0.3)}%` }} />
                  </span>
                  <span class="dur">{ms(r.span.endUs - r.span.startUs)}</span>
                </div>
              ))}
            </div>
          </section>
        )}
      </div>
    </div>
  );
}
