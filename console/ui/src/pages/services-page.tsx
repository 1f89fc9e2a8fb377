import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { get, post, qs, subscribe } from "../api";
import { VirtualList } from "../components/virtual-list";
import type { PageProps } from "./index";

interface Summary {
  name: string;
  instances: number;
  draining: number;
  versions: string[];
  zones: string[];
  invalid: number;
}
interface Row {
  id: string;
  service: string;
  address: string;
  version: string;
  zone: string;
  weight: number;
  metadata: Record<string, string>;
  startedAt: number;
  lease: string;
  draining: boolean;
}
interface Detail {
  instance: Row;
  probe: { health: string; leaseTtl?: number; leaseGrantedTtl?: number };
}

const ROW = 28;
const PAGE = 100;

export function ServicesPage({ session }: PageProps) {
  const [services, setServices] = useState<Summary[]>([]);
  const [serviceFilter, setServiceFilter] = useState("");
  const [selected, setSelected] = useState("");
  const [q, setQ] = useState("");
  const [total, setTotal] = useState(0);
  const [grand, setGrand] = useState(0);
  const [, setTick] = useState(0);
  const rows = useRef(new Map<number, Row>());
  const range = useRef<[number, number]>([0, 0]);
  const generation = useRef(0);
  const [detail, setDetail] = useState<Detail | null>(null);
  const [message, setMessage] = useState("");
  const canEdit = session.role !== "viewer";

  const loadServices = useCallback(() => {
    get<{ services: Summary[]; total: number }>(`/api/services?${qs({ q: serviceFilter })}`).then((r) => {
      setServices(r.services);
      setGrand(r.total);
    });
  }, [serviceFilter]);

  /** Loads the pages covering the visible range (all pages again after a change). */
  const loadRange = useCallback(
    (fresh: boolean) => {
      const gen = fresh ? ++generation.current : generation.current;
      const [start, end] = range.current;
      const first = Math.floor(start / PAGE) * PAGE;
      for (let offset = first; offset < Math.max(end, first + 1); offset += PAGE) {
        if (!fresh && rows.current.has(offset) && rows.current.has(Math.min(offset + PAGE, Math.max(end, 1)) - 1)) continue;
        get<{ total: number; items: Row[] }>(`/api/instances?${qs({ service: selected, q, offset, limit: PAGE })}`).then((r) => {
          if (gen !== generation.current) return;
          if (fresh && offset === first) rows.current = new Map();
          r.items.forEach((row, i) => rows.current.set(offset + i, row));
          setTotal(r.total);
          setTick((t) => t + 1);
        });
      }
    },
    [selected, q],
  );

  useEffect(loadServices, [loadServices]);
  useEffect(() => {
    rows.current = new Map();
    range.current = [0, 40];
    loadRange(true);
  }, [loadRange]);

  // Live: the server says which services changed; re-read what is on screen. One
  // subscription for the page's life (re-subscribing would drop notes in between).
  const latest = useRef({ loadServices, loadRange, selected, detail });
  latest.current = { loadServices, loadRange, selected, detail };
  useEffect(
    () =>
      subscribe("/api/services/events", "changed", (data) => {
        const d = data as { services: string[] };
        const now = latest.current;
        now.loadServices();
        if (!now.selected || d.services.includes(now.selected)) now.loadRange(true);
        if (now.detail && d.services.includes(now.detail.instance.service)) refreshDetail(now.detail.instance);
      }),
    [],
  );

  const open = (row: Row) => get<Detail>(`/api/instances/${encodeURIComponent(row.service)}/${encodeURIComponent(row.id)}`).then(setDetail, (e: Error) => setMessage(e.message));
  const refreshDetail = (row: Row) =>
    get<Detail>(`/api/instances/${encodeURIComponent(row.service)}/${encodeURIComponent(row.id)}`).then(setDetail, () => setDetail(null));

  const change = (row: Row, body: { draining: boolean } | { weight: number }) =>
    post<{ instance: Row }>(`/api/instances/${encodeURIComponent(row.service)}/${encodeURIComponent(row.id)}`, body).then(
      (r) => {
        setMessage("");
        setDetail((d) => (d && d.instance.id === row.id ? { ...d, instance: r.instance } : d));
      },
      (e: Error) => setMessage(e.message),
    );

  return (
    <div class="services">
      <section class="service-list">
        <input id="service-filter" placeholder="filter services" value={serviceFilter} onInput={(e) => setServiceFilter(e.currentTarget.value)} />
        <p class="muted" data-testid="grand-total">
          {services.length} services, {grand} instances
        </p>
        <ul>
          <li class={selected === "" ? "selected" : ""} onClick={() => setSelected("")}>
            all services
          </li>
          {services.map((s) => (
            <li key={s.name} class={`service-row ${selected === s.name ? "selected" : ""}`} data-service={s.name} onClick={() => setSelected(s.name)}>
              <span>{s.name}</span>
              <span class="count" data-testid="instance-count">
                {s.instances}
              </span>
              {s.draining > 0 && <span class="badge warn">{s.draining} draining</span>}
              {s.invalid > 0 && <span class="badge error">{s.invalid} invalid</span>}
            </li>
          ))}
        </ul>
      </section>
      <section class="instance-list">
        <div class="toolbar">
          <input id="instance-filter" placeholder="filter instances: id, address, version, zone, metadata, draining" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
          <span class="muted" data-testid="instance-total">
            {total} instances
          </span>
        </div>
        <div class="vhead">
          <span>service</span>
          <span>instance</span>
          <span>address</span>
          <span>version</span>
          <span>zone</span>
          <span>weight</span>
          <span>status</span>
        </div>
        <VirtualList<Row>
          total={total}
          rowHeight={ROW}
          height={520}
          rowAt={(i) => rows.current.get(i)}
          onRange={(start, end) => {
            range.current = [start, end];
            loadRange(false);
          }}
          render={(r) => (
            <div class={`instance-row ${r.draining ? "draining" : ""}`} data-id={r.id} onClick={() => open(r)}>
              <span>{r.service}</span>
              <span>{r.id}</span>
              <span>{r.address}</span>
              <span>{r.version}</span>
              <span>{r.zone}</span>
              <span>{r.weight}</span>
              <span>{r.draining ? "draining" : "serving"}</span>
            </div>
          )}
        />
      </section>
      {detail && (
        <aside class="instance-detail" data-id={detail.instance.id}>
          <h3>
            {detail.instance.service} / {detail.instance.id}
          </h3>
          <dl>
            <dt>address</dt>
            <dd>{detail.instance.address}</dd>
            <dt>version</dt>
            <dd>{detail.instance.version || "—"}</dd>
            <dt>zone</dt>
            <dd>{detail.instance.zone || "—"}</dd>
            <dt>weight</dt>
            <dd data-testid="weight">{detail.instance.weight}</dd>
            <dt>health</dt>
            <dd data-testid="health">{detail.probe.health}</dd>
            <dt>balancing</dt>
            <dd data-testid="balancing">{detail.instance.draining ? "draining (no new calls)" : "in rotation"}</dd>
            <dt>registered since</dt>
            <dd>{new Date(detail.instance.startedAt).toISOString()}</dd>
            <dt>lease</dt>
            <dd>
              {detail.instance.lease === "0" ? "none" : `${detail.instance.lease} (TTL ${detail.probe.leaseTtl ?? "?"} s of ${detail.probe.leaseGrantedTtl ?? "?"} s)`}
            </dd>
            <dt>metadata</dt>
            <dd>
              <code>{JSON.stringify(detail.instance.metadata)}</code>
            </dd>
          </dl>
          {canEdit && (
            <div class="actions">
              <button class="drain" onClick={() => change(detail.instance, { draining: !detail.instance.draining })}>
                {detail.instance.draining ? "Return to rotation" : "Drain (NOT_SERVING)"}
              </button>
              <WeightEditor weight={detail.instance.weight} onSet={(w) => change(detail.instance, { weight: w })} />
            </div>
          )}
          {message && <p class="error">{message}</p>}
          <button class="link" onClick={() => setDetail(null)}>
            close
          </button>
        </aside>
      )}
    </div>
  );
}

function WeightEditor({ weight, onSet }: { weight: number; onSet: (w: number) => void }) {
  const [value, setValue] = useState(String(weight));
  useEffect(() => setValue(String(weight)), [weight]);
  return (
    <span>
      <input class="weight" type="number" min="0.001" step="any" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      <button class="set-weight" onClick={() => onSet(Number(value))}>
        Set weight
      </button>
    </span>
  );
}
