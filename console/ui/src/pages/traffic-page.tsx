import { useEffect, useRef, useState } from "preact/hooks";
import { get, subscribe } from "../api";
import { VersionedDoc } from "../components/versioned-doc";
import type { PageProps } from "./index";

interface ServiceRow {
  service: string;
  inForce: boolean;
  hasHistory: boolean;
  instances: number;
}
interface GatewayRow {
  env: string;
  gateway: string;
}
interface RouteRow {
  method: string;
  template: string;
  grpc: string;
  service: string;
  body: string | null;
}
type Selection = { kind: "rule"; service: string } | { kind: "policy"; env: string; gateway: string } | { kind: "routes" };

function selectionOf(path: string[]): Selection | null {
  if (path[0] === "rules" && path[1]) return { kind: "rule", service: path[1] };
  if (path[0] === "gateway" && path[1] && path[2]) return { kind: "policy", env: path[1], gateway: path[2] };
  if (path[0] === "routes") return { kind: "routes" };
  return null;
}
const hashOf = (s: Selection) => (s.kind === "rule" ? `#/traffic/rules/${s.service}` : s.kind === "policy" ? `#/traffic/gateway/${s.env}/${s.gateway}` : "#/traffic/routes");
const enc = encodeURIComponent;

/** Traffic rules per service and the gateway's policies and routes, live from etcd. */
export function TrafficPage({ session, path, info }: PageProps) {
  const [services, setServices] = useState<ServiceRow[]>([]);
  const [gateways, setGateways] = useState<GatewayRow[]>([]);
  const [error, setError] = useState("");
  const [selected, setSelected] = useState<Selection | null>(selectionOf(path));
  const [changed, setChanged] = useState(0);
  const current = useRef(selected);
  current.current = selected;
  const canEdit = session.role !== "viewer";
  const gatewayUrl = (info as { gatewayUrl?: string | null } | undefined)?.gatewayUrl;

  const loadLists = () =>
    Promise.all([get<{ services: ServiceRow[] }>("/api/traffic/services"), get<{ gateways: GatewayRow[] }>("/api/gateway/policies")]).then(
      ([s, g]) => {
        setServices(s.services);
        setGateways(g.gateways);
        setError("");
      },
      (e: Error) => setError(e.message),
    );
  useEffect(() => void loadLists(), []);
  // Follow the URL (links, back and forward).
  useEffect(() => {
    const s = selectionOf(path);
    if (s) setSelected(s);
  }, [path.join("/")]);
  useEffect(
    () =>
      subscribe("/api/traffic/events", "changed", (data) => {
        const note = data as { traffic: string[]; gateway: boolean };
        void loadLists();
        const sel = current.current;
        const hit = sel?.kind === "rule" ? note.traffic.includes(sel.service) || note.traffic.includes("*") : sel?.kind === "policy" && note.gateway;
        if (hit) setChanged((n) => n + 1);
      }),
    [],
  );
  const choose = (s: Selection) => {
    setSelected(s);
    location.hash = hashOf(s);
  };

  return (
    <div class="traffic">
      <section class="traffic-lists">
        {error && <p class="error">{error}</p>}
        <h3>Traffic rules</h3>
        <ul>
          {services.map((s) => (
            <li key={s.service} class={`traffic-service ${selected?.kind === "rule" && selected.service === s.service ? "selected" : ""}`} data-service={s.service} onClick={() => choose({ kind: "rule", service: s.service })}>
              {s.service}
              <span class={`badge ${s.inForce ? "" : "muted"}`}>{s.inForce ? "rule" : s.hasHistory ? "removed" : "no rule"}</span>
              <div class="muted small">{s.instances} instance{s.instances === 1 ? "" : "s"}</div>
            </li>
          ))}
        </ul>
        {services.length === 0 && <p class="muted">No services registered and no rules in etcd.</p>}
        <h3>Gateway</h3>
        <p class="muted small">{gatewayUrl ? <>serving at <code class="gateway-url">{gatewayUrl}</code></> : "no gateway URL given (--gateway)"}</p>
        <ul>
          {gateways.map((g) => (
            <li
              key={`${g.env}/${g.gateway}`}
              class={`gateway-row ${selected?.kind === "policy" && selected.env === g.env && selected.gateway === g.gateway ? "selected" : ""}`}
              data-env={g.env}
              data-gateway={g.gateway}
              onClick={() => choose({ kind: "policy", env: g.env, gateway: g.gateway })}
            >
              policy of <code>{g.gateway}</code> <span class="muted">@{g.env}</span>
            </li>
          ))}
          <li class={`gateway-routes ${selected?.kind === "routes" ? "selected" : ""}`} onClick={() => choose({ kind: "routes" })}>
            routes from the registered services
          </li>
        </ul>
      </section>
      <div class="traffic-detail">
        {selected?.kind === "rule" && (
          <VersionedDoc
            key={`rule/${selected.service}`}
            base={`/api/traffic/rules/${enc(selected.service)}`}
            title={`Traffic rule of ${selected.service}`}
            canEdit={canEdit}
            changed={changed}
            emptyHint="No rule in force: every instance serves every call. Write one below (docs/traffic.md has the reference)."
          />
        )}
        {selected?.kind === "policy" && (
          <VersionedDoc
            key={`policy/${selected.env}/${selected.gateway}`}
            base={`/api/gateway/policies/${enc(selected.env)}/${enc(selected.gateway)}`}
            title={`Gateway policy of ${selected.gateway}@${selected.env}`}
            canEdit={canEdit}
            changed={changed}
            emptyHint="No policy written yet: the gateway runs on its start-up policy."
          />
        )}
        {selected?.kind === "routes" && <Routes />}
        {!selected && <p class="muted">Pick a service's traffic rule, a gateway policy or the gateway's routes.</p>}
      </div>
    </div>
  );
}

function Routes() {
  const [data, setData] = useState<{ routes: RouteRow[]; problems: { service: string; error: string }[] } | null>(null);
  const [error, setError] = useState("");
  const load = (refresh: boolean) => get<{ routes: RouteRow[]; problems: { service: string; error: string }[] }>(`/api/gateway/routes${refresh ? "?refresh=1" : ""}`).then(setData, (e: Error) => setError(e.message));
  useEffect(() => void load(false), []);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">Asking the services through reflection…</p>;
  return (
    <section class="routes">
      <h2>
        Gateway routes <button class="link" onClick={() => load(true)}>ask instances again</button>
      </h2>
      <p class="muted small">What a gateway discovering the registry serves: the services' google.api.http annotations, learnt through reflection.</p>
      {data.problems.map((p) => (
        <p key={p.service} class="error route-problem" data-service={p.service}>
          {p.service}: {p.error}
        </p>
      ))}
      <table class="route-table">
        <thead>
          <tr>
            <th>HTTP</th>
            <th>path</th>
            <th>gRPC method</th>
            <th>service</th>
            <th>body</th>
          </tr>
        </thead>
        <tbody>
          {data.routes.map((r) => (
            <tr key={`${r.method} ${r.template}`} class="route-row" data-grpc={r.grpc} data-method={r.method}>
              <td>{r.method}</td>
              <td>
                <code>{r.template}</code>
              </td>
              <td>
                <code>{r.grpc}</code>
              </td>
              <td>{r.service}</td>
              <td>{r.body ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.routes.length === 0 && <p class="muted">No routes: no registered service has google.api.http annotations.</p>}
    </section>
  );
}
