import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, get, post } from "../api";
import { DiffView, type Difference } from "./diff-view";

export interface VersionRecord {
  version: number;
  value: Record<string, unknown>;
  author: string;
  at: string;
  comment: string;
  kind: string;
  from?: number;
  base?: number;
}
interface DocState {
  current: VersionRecord | null;
  problem: string | null;
  history: VersionRecord[];
  removable: boolean;
}
interface Issue {
  path: string;
  message: string;
}
type Check = { ok: true; diff: Difference[]; base: number } | { ok: false; issues: Issue[] };

const issuesOf = (e: unknown): Issue[] => {
  const details = e instanceof ApiError ? (e.details as { issues?: Issue[] } | undefined) : undefined;
  return details?.issues ?? [{ path: "", message: (e as Error).message }];
};

/**
 * A versioned document in etcd (a traffic rule, a gateway policy): the version
 * in force, an editor checked by the server as the operator types (the CLI's
 * parser and validator) with the diff it would make, apply with a note,
 * history with a diff between any two versions, rollback, and remove where the
 * document allows it. `changed` increments when the server says it changed.
 */
export function VersionedDoc({ base, title, canEdit, changed, emptyHint }: { base: string; title: string; canEdit: boolean; changed: number; emptyHint: string }) {
  const [state, setState] = useState<DocState | null>(null);
  const [loadError, setLoadError] = useState("");
  const [text, setText] = useState("");
  const [dirty, setDirty] = useState(false);
  const [check, setCheck] = useState<Check | null>(null);
  const [note, setNote] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [compare, setCompare] = useState<number[]>([]);
  const [historyDiff, setHistoryDiff] = useState<{ from: number; to: number; diff: Difference[] } | null>(null);
  const timer = useRef<number | undefined>(undefined);

  const reload = (resetEditor: boolean) =>
    get<DocState>(base).then(
      (s) => {
        setState(s);
        setLoadError("");
        if (resetEditor) {
          setText(s.current ? JSON.stringify(s.current.value, null, 2) : "");
          setDirty(false);
          setCheck(null);
        }
      },
      (e: Error) => setLoadError(e.message),
    );
  useEffect(() => {
    setState(null);
    setMessage(null);
    setCompare([]);
    setHistoryDiff(null);
    void reload(true);
  }, [base]);
  // A change from elsewhere (the CLI, a release, another operator): show it, but keep what is being typed.
  useEffect(() => {
    if (changed > 0) void reload(!dirty);
  }, [changed]);

  const edit = (value: string) => {
    setText(value);
    setDirty(true);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      post<Check>(`${base}/check`, { text: value }).then(setCheck, (e: unknown) => setCheck({ ok: false, issues: issuesOf(e) }));
    }, 250);
  };
  const act = (p: Promise<unknown>, done: string) =>
    p.then(
      () => {
        setMessage({ ok: true, text: done });
        setNote("");
        return reload(true);
      },
      (e: unknown) => setMessage({ ok: false, text: (e as Error).message }),
    );
  const inForce = state?.current?.version ?? 0;
  const apply = () => act(post(`${base}/apply`, { text, comment: note, expectVersion: inForce }), "Applied.");
  const rollback = (v: number) => act(post(`${base}/rollback`, { version: v, comment: note, expectVersion: inForce }), `Rolled back to version ${v}.`);
  const remove = () => act(post(`${base}/remove`, { expectVersion: inForce }), "Removed: nothing is in force now.");
  const toggle = (v: number) => setCompare((c) => (c.includes(v) ? c.filter((x) => x !== v) : [...c.slice(-1), v]));
  const runCompare = () => {
    const [a, b] = [...compare].sort((x, y) => x - y);
    get<{ from: number; to: number; diff: Difference[] }>(`${base}/diff?from=${a}&to=${b}`).then(setHistoryDiff, (e: Error) => setMessage({ ok: false, text: e.message }));
  };

  if (loadError) return <p class="error load-error">{loadError}</p>;
  if (!state) return <p class="muted">Loading…</p>;
  return (
    <section class="doc">
      <h2>
        {title} <span class="muted doc-version">{state.current ? `version ${state.current.version} in force` : "nothing in force"}</span>
      </h2>
      {state.problem && <p class="error doc-problem">{state.problem}</p>}
      {state.current ? (
        <div class="doc-current">
          <p class="muted small">
            by {state.current.author} at {state.current.at}
            {state.current.comment ? ` — ${state.current.comment}` : ""}
          </p>
          <pre>{JSON.stringify(state.current.value, null, 2)}</pre>
        </div>
      ) : (
        !state.problem && <p class="muted doc-empty">{emptyHint}</p>
      )}
      {canEdit && (
        <div class="editor">
          <h3>Edit (YAML or JSON)</h3>
          <textarea class="doc-editor" rows={12} value={text} onInput={(e) => edit(e.currentTarget.value)} spellcheck={false} />
          {check && !check.ok && (
            <ul class="issues">
              {check.issues.map((i) => (
                <li key={i.path + i.message}>
                  <code>{i.path || "document"}</code>: {i.message}
                </li>
              ))}
            </ul>
          )}
          {check && check.ok && (
            <div class="pending-diff">
              <h4>Changes against version {check.base}</h4>
              <DiffView diff={check.diff} empty="Nothing to apply: this equals the version in force." />
            </div>
          )}
          <input class="doc-comment" placeholder="why (recorded with the version)" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
          <button class="doc-apply" disabled={!check || !check.ok || check.diff.length === 0} onClick={apply}>
            Apply
          </button>
          {state.removable && state.current && (
            <button class="doc-remove" onClick={remove}>
              Remove
            </button>
          )}
        </div>
      )}
      {message && <p class={`message ${message.ok ? "ok" : "error"}`}>{message.text}</p>}
      <h3>History</h3>
      <button class="doc-compare" disabled={compare.length !== 2} onClick={runCompare}>
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
                {inForce === v.version && <span class="badge">in force</span>}
              </td>
              <td>
                {v.kind}
                {v.from ? ` of ${v.from}` : ""}
              </td>
              <td>{v.author}</td>
              <td>{v.at}</td>
              <td>{v.comment}</td>
              <td>
                {canEdit && inForce !== v.version && (
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
  );
}
