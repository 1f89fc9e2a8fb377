import { useEffect, useRef, useState } from "preact/hooks";
import { get, post } from "../api";
import { DiffView, type Difference } from "../components/diff-view";
import type { PageProps } from "./index";

interface App {
  env: string;
  app: string;
}
interface Version {
  version: number;
  type: string;
  value: Record<string, unknown>;
  author: string;
  at: string;
  comment: string;
  kind: string;
  from?: number;
  match?: Record<string, string>;
}
interface Gray {
  version: number;
  match: Record<string, string>;
  author: string;
  at: string;
  comment: string;
}
interface SchemaField {
  path: string;
  type: string;
  comment: string;
  group: boolean;
}
interface AppState {
  current: Version | null;
  gray: Gray | null;
  history: Version[];
  typeName: string;
  schema: SchemaField[] | null;
  schemaProblem?: string;
}
type Check = { ok: true; diff: Difference[]; base: number } | { ok: false; issues: { path: string; message: string }[] };

function valueAt(value: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, k) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined), value);
}

export function ConfigPage({ session, path }: PageProps) {
  const [apps, setApps] = useState<App[]>([]);
  const [selected, setSelected] = useState<App | null>(path[0] && path[1] ? { env: path[0], app: path[1] } : null);
  const [state, setState] = useState<AppState | null>(null);
  const [text, setText] = useState("");
  const [check, setCheck] = useState<Check | null>(null);
  const [note, setNote] = useState("");
  const [labels, setLabels] = useState("");
  const [message, setMessage] = useState("");
  const [compare, setCompare] = useState<number[]>([]);
  const [historyDiff, setHistoryDiff] = useState<{ from: number; to: number; diff: Difference[] } | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const canEdit = session.role !== "viewer";
  const base = selected ? `/api/config/${encodeURIComponent(selected.env)}/${encodeURIComponent(selected.app)}` : "";

  useEffect(() => void get<{ apps: App[] }>("/api/config/apps").then((r) => setApps(r.apps)), []);

  const reload = () =>
    get<AppState>(base).then((s) => {
      setState(s);
      setText(JSON.stringify(s.current?.value ?? {}, null, 2));
      setCheck(null);
    });
  useEffect(() => {
    if (selected) void reload();
  }, [base]);

  // Validation as you type: the server checks against the proto schema and diffs with the current version.
  const edit = (value: string) => {
    setText(value);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch (e) {
        setCheck({ ok: false, issues: [{ path: "", message: `not JSON: ${(e as Error).message}` }] });
        return;
      }
      post<Check>(`${base}/check`, { value: parsed }).then(setCheck, (e: Error) => setCheck({ ok: false, issues: [{ path: "", message: e.message }] }));
    }, 250);
  };

  const act = (p: Promise<unknown>, done: string) =>
    p.then(
      () => {
        setMessage(done);
        setNote("");
        return reload();
      },
      (e: Error) => setMessage(e.message),
    );

  const publish = () => act(post(`${base}/publish`, { value: JSON.parse(text), comment: note, expectVersion: state?.current?.version ?? 0 }), "Published.");
  const startGray = () => act(post(`${base}/gray`, { value: JSON.parse(text), match: labels, comment: note }), "Gray release started.");
  const rollback = (v: number) => act(post(`${base}/rollback`, { version: v, comment: note || `roll back to ${v}` }), `Rolled back to version ${v}.`);
  const toggle = (v: number) => setCompare((c) => (c.includes(v) ? c.filter((x) => x !== v) : [...c.slice(-1), v]));
  const runCompare = () => {
    const [a, b] = [...compare].sort((x, y) => x - y);
    get<{ from: number; to: number; diff: Difference[] }>(`${base}/diff?from=${a}&to=${b}`).then(setHistoryDiff, (e: Error) => setMessage(e.message));
  };

  return (
    <div class="config">
      <section class="app-list">
        <h3>Applications</h3>
        <ul>
          {apps.map((a) => (
            <li
              key={`${a.env}/${a.app}`}
              class={`app-row ${selected?.app === a.app && selected.env === a.env ? "selected" : ""}`}
              data-app={a.app}
              data-env={a.env}
              onClick={() => {
                setSelected(a);
                location.hash = `#/config/${a.env}/${a.app}`;
              }}
            >
              {a.app} <span class="muted">@{a.env}</span>
            </li>
          ))}
        </ul>
        {apps.length === 0 && <p class="muted">No config in etcd yet.</p>}
      </section>
      {selected && state && (
        <section class="app-detail">
          <h2>
            {selected.app}@{selected.env} <span class="muted">version {state.current?.version ?? "—"}</span> <code>{state.typeName}</code>
          </h2>
          {state.schemaProblem && <p class="warn">{state.schemaProblem}</p>}
          {state.gray && (
            <div class="gray-rule">
              Gray release: version {state.gray.version} for instances with <code>{Object.entries(state.gray.match).map(([k, v]) => `${k}=${v}`).join(",")}</code> ({state.gray.author})
              {canEdit && (
                <>
                  <button class="promote" onClick={() => act(post(`${base}/gray/promote`, { comment: note }), "Gray version promoted.")}>Promote to everyone</button>
                  <button class="drop" onClick={() => act(post(`${base}/gray/drop`), "Gray release dropped.")}>Drop</button>
                </>
              )}
            </div>
          )}
          {state.schema && (
            <table class="schema">
              <thead>
                <tr>
                  <th>field</th>
                  <th>type</th>
                  <th>current value</th>
                  <th>meaning</th>
                </tr>
              </thead>
              <tbody>
                {state.schema.map((f) => (
                  <tr key={f.path} data-field={f.path} class={f.group ? "group" : ""}>
                    <td>
                      <code>{f.path}</code>
                    </td>
                    <td>{f.type}</td>
                    <td class="value">{f.group ? "" : JSON.stringify(valueAt(state.current?.value, f.path) ?? null)}</td>
                    <td class="muted">{f.comment}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {canEdit && state.schema && (
            <div class="editor">
              <h3>Edit</h3>
              <textarea id="config-editor" rows={10} value={text} onInput={(e) => edit(e.currentTarget.value)} spellcheck={false} />
              {check && !check.ok && (
                <ul class="issues">
                  {check.issues.map((i) => (
                    <li key={i.path + i.message}>
                      <code>{i.path || "value"}</code>: {i.message}
                    </li>
                  ))}
                </ul>
              )}
              {check && check.ok && (
                <div class="pending-diff">
                  <h4>Changes against version {check.base}</h4>
                  <DiffView diff={check.diff} empty="Nothing to publish: the value equals the current version." />
                </div>
              )}
              <input id="release-note" placeholder="release note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
              <button id="publish" disabled={!check || !check.ok || check.diff.length === 0} onClick={publish}>
                Publish
              </button>
              <input id="gray-labels" placeholder="gray labels, e.g. zone=b" value={labels} onInput={(e) => setLabels(e.currentTarget.value)} />
              <button id="start-gray" disabled={!check || !check.ok || !labels || !!state.gray} onClick={startGray}>
                Publish as gray
              </button>
            </div>
          )}
          {message && <p class="message">{message}</p>}
          <h3>History</h3>
          <button id="compare" disabled={compare.length !== 2} onClick={runCompare}>
            Compare selected versions
          </button>
          <table class="history">
            <thead>
              <tr>
                <th></th>
                <th>version</th>
                <th>kind</th>
                <th>author</th>
                <th>when</th>
                <th>note</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {state.history.map((v) => (
                <tr key={v.version} class="version-row" data-version={v.version}>
                  <td>
                    <input type="checkbox" class="pick" checked={compare.includes(v.version)} onChange={() => toggle(v.version)} />
                  </td>
                  <td>
                    {v.version}
                    {state.current?.version === v.version && <span class="badge">current</span>}
                  </td>
                  <td>
                    {v.kind}
                    {v.from ? ` of ${v.from}` : ""}
                  </td>
                  <td>{v.author}</td>
                  <td>{v.at}</td>
                  <td>{v.comment}</td>
                  <td>
                    {canEdit && state.current?.version !== v.version && (
                      <button class="rollback" onClick={() => rollback(v.version)}>
                        Roll back to this
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {historyDiff && (
            <div class="history-diff">
              <h4>
                Version {historyDiff.from} → {historyDiff.to}
              </h4>
              <DiffView diff={historyDiff.diff} />
            </div>
          )}
        </section>
      )}
    </div>
  );
}
