import { useEffect, useState } from "preact/hooks";
import { get } from "../api";
import type { PageProps } from "./index";

interface Learnt {
  name: string;
  protoServices: string[];
  from: string;
  error?: string;
}

/** Every registered service's API docs (the `protomesh docs` page), with "try it" through the registry. */
export function ApiPage({ path }: PageProps) {
  const [services, setServices] = useState<Learnt[] | null>(null);
  const [selected, setSelected] = useState(path[0] ?? "");
  const load = (refresh: boolean) => get<{ services: Learnt[] }>(`/api/apidocs/services${refresh ? "?refresh=1" : ""}`).then((r) => setServices(r.services));
  useEffect(() => void load(false), []);
  const current = selected || services?.find((s) => s.protoServices.length > 0)?.name || "";
  return (
    <div class="api">
      <section class="api-list">
        <h3>Registered services</h3>
        <button class="link" onClick={() => load(true)}>
          ask instances again
        </button>
        {services === null && <p class="muted">Asking instances through reflection…</p>}
        <ul>
          {services?.map((s) => (
            <li
              key={s.name}
              class={`api-service ${current === s.name ? "selected" : ""}`}
              data-service={s.name}
              onClick={() => {
                setSelected(s.name);
                location.hash = `#/api/${s.name}`;
              }}
            >
              {s.name}
              <div class="muted small">{s.error ?? s.protoServices.join(", ")}</div>
            </li>
          ))}
        </ul>
      </section>
      {current && <iframe class="api-docs" key={current} title={`${current} API`} src={`/api/apidocs/page/${encodeURIComponent(current)}`} />}
    </div>
  );
}
