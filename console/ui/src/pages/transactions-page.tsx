import { useEffect, useRef, useState } from "preact/hooks";
import { get, post, qs } from "../api";
import type { PageProps } from "./index";

interface Branch {
  branchId: string;
  op: string;
  target: string;
  method: string;
  status: string;
  attempts: number;
  lastError: string;
  updatedAtMs: number;
  after: string[];
}
interface Attempt {
  branchId: string;
  op: string;
  atMs: number;
  code: number;
  error: string;
}
interface Tx {
  gid: string;
  mode: string;
  status: string;
  owner: string;
  createdAtMs: number;
  updatedAtMs: number;
  nextAtMs: number;
  timeoutAtMs: number;
  finishedAtMs: number;
  rounds: number;
  lastError: string;
  branches: Branch[];
  attempts: Attempt[];
}
interface Info {
  coordinator: string;
  statuses: string[];
  modes: string[];
}

const POLL_MS = 3000;
/** Rows per step of "show more"; the server answers at most 500. */
const PAGE = 100;
const FINAL = ["succeed", "failed"];
const at = (ms: number | string | undefined) => (ms && Number(ms) > 0 ? new Date(Number(ms)).toISOString().replace("T", " ").replace("Z", "") : "—");
/** The age filter's choices; an age written into the URL by hand (`age=2h`) is offered too. */
const AGES: ReadonlyArray<[string, string]> = [
  ["1m", "begun over 1 min ago"],
  ["10m", "begun over 10 min ago"],
  ["1h", "begun over 1 hour ago"],
  ["1d", "begun over 1 day ago"],
];
const AGE_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** `90s`, `10m`, `2h`, `1d` in milliseconds; undefined for anything else. */
const ageMs = (text: string): number | undefined => {
  const m = /^(\d{1,6})([smhd])$/.exec(text);
  return m ? Number(m[1]) * AGE_UNIT_MS[m[2]!]! : undefined;
};
const UNFINISHED = ["prepared", "submitted", "aborting"];

interface Filter {
  status: string;
  mode: string;
  /** An age such as `10m` (empty: any). */
  age: string;
  /** Only prepared, submitted or aborting; with an age, the stuck view. */
  stuck: boolean;
}

const filterOf = (q: URLSearchParams): Filter => ({ status: q.get("status") ?? "", mode: q.get("mode") ?? "", age: q.get("age") ?? "", stuck: q.get("stuck") === "1" });
/** The hash for a selected transaction (or none) under a filter: what the page shows is what the URL says. */
const hashOf = (gid: string, f: Filter): string => {
  const q = new URLSearchParams();
  if (f.status) q.set("status", f.status);
  if (f.mode) q.set("mode", f.mode);
  if (f.age) q.set("age", f.age);
  if (f.stuck) q.set("stuck", "1");
  const text = q.toString();
  return `#/transactions${gid ? `/${encodeURIComponent(gid)}` : ""}${text ? `?${text}` : ""}`;
};

const CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/**
 * The coordinator's transactions: filter by status, mode and age (and the stuck view: unfinished
 * and old), kept in the URL; one transaction's branches, attempts and last errors; retry and stop.
 */
export function TransactionsPage({ session, path, info, query }: PageProps) {
  const meta = info as Info;
  const filter = filterOf(query);
  const olderThanMs = filter.age ? ageMs(filter.age) : undefined;
  const [list, setList] = useState<{ transactions: Tx[]; nextPage: string } | null>(null);
  const [error, setError] = useState("");
  // The URL says which transaction is open, as it says the filter.
  const selected = path[0] ?? "";
  const [limit, setLimit] = useState(PAGE);
  const setFilter = (next: Filter) => {
    // A final status cannot be stuck: ticking "unfinished only" drops it.
    location.hash = hashOf(selected, next.stuck && next.status && !UNFINISHED.includes(next.status) ? { ...next, status: "" } : next);
  };
  const canEdit = session.role !== "viewer";

  const url = `/api/transactions?${qs({ status: filter.status, mode: filter.mode, olderThanMs, unfinished: filter.stuck ? 1 : undefined, limit })}`;
  // The answer to a filter no longer in force (a slow read, then a new choice) is dropped.
  const wanted = useRef(url);
  wanted.current = url;
  const load = () =>
    get<{ transactions: Tx[]; nextPage: string }>(url).then(
      (r) => {
        if (wanted.current !== url) return;
        setList(r);
        setError("");
      },
      (e: Error) => {
        if (wanted.current === url) setError(e.message);
      },
    );
  // The coordinator's store is not in etcd, so there is no watch to follow: the list is re-read every few seconds.
  useEffect(() => {
    void load();
    const t = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(t);
  }, [url]);

  return (
    <div class="transactions">
      <section class="tx-list">
        <div class="toolbar">
          <select id="tx-status" value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.currentTarget.value })}>
            <option value="">any status</option>
            {meta.statuses.filter((s) => !filter.stuck || UNFINISHED.includes(s)).map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <select id="tx-mode" value={filter.mode} onChange={(e) => setFilter({ ...filter, mode: e.currentTarget.value })}>
            <option value="">any mode</option>
            {meta.modes.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
          <select id="tx-age" value={filter.age} onChange={(e) => setFilter({ ...filter, age: e.currentTarget.value })}>
            <option value="">any age</option>
            {AGES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
            {filter.age && olderThanMs !== undefined && !AGES.some(([v]) => v === filter.age) && <option value={filter.age}>begun over {filter.age} ago</option>}
          </select>
          <label class="small" title="prepared, submitted or aborting: not final yet">
            <input id="tx-stuck" type="checkbox" checked={filter.stuck} onChange={(e) => setFilter({ ...filter, stuck: e.currentTarget.checked })} /> unfinished only
          </label>
          <button class="link" onClick={() => void load()}>
            refresh
          </button>
          <span class="muted small">coordinator {meta.coordinator}</span>
        </div>
        {filter.age && olderThanMs === undefined && <p class="error tx-age-error">The age {JSON.stringify(filter.age)} in the URL is not one such as 90s, 10m, 2h or 1d; showing every age.</p>}
        {filter.stuck && olderThanMs !== undefined && <p class="muted small tx-stuck-note">Stuck: not final yet, and begun over {filter.age} ago.</p>}
        {error && <p class="error tx-error">{error}</p>}
        {list && (
          <table class="tx-table">
            <thead>
              <tr>
                <th>gid</th>
                <th>mode</th>
                <th>status</th>
                <th>rounds</th>
                <th>created</th>
                <th>last error</th>
              </tr>
            </thead>
            <tbody>
              {list.transactions.map((t) => (
                <tr
                  key={t.gid}
                  class={`tx-row ${t.status === "failed" ? "failed" : ""} ${selected === t.gid ? "selected" : ""}`}
                  data-gid={t.gid}
                  data-status={t.status}
                  onClick={() => {
                    location.hash = hashOf(t.gid, filter);
                  }}
                >
                  <td>
                    <code>{t.gid}</code>
                  </td>
                  <td>{t.mode}</td>
                  <td class="status">{t.status}</td>
                  <td>{t.rounds}</td>
                  <td>{at(t.createdAtMs)}</td>
                  <td class="error small">{t.lastError.slice(0, 120)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {list && list.transactions.length === 0 && <p class="muted tx-none">No transactions match.</p>}
        {list && list.nextPage && limit < 500 && (
          <button class="link tx-more" onClick={() => setLimit(limit + PAGE)}>
            show {PAGE} more
          </button>
        )}
        {list && list.nextPage && limit >= 500 && <p class="muted small">Showing the newest 500; narrow the filter, or use protomesh tx list --page to read further.</p>}
      </section>
      {selected && <TxDetail key={selected} gid={selected} canEdit={canEdit} onChange={() => void load()} />}
    </div>
  );
}

function TxDetail({ gid, canEdit, onChange }: { gid: string; canEdit: boolean; onChange: () => void }) {
  const [tx, setTx] = useState<Tx | null>(null);
  const [error, setError] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const load = () =>
    get<{ transaction: Tx }>(`/api/transactions/${encodeURIComponent(gid)}`).then(
      (r) => {
        setTx(r.transaction);
        setError("");
      },
      (e: Error) => setError(e.message),
    );
  useEffect(() => {
    void load();
    const t = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(t);
  }, [gid]);
  const act = (verb: "retry" | "stop") =>
    post<{ transaction: Tx }>(`/api/transactions/${encodeURIComponent(gid)}/${verb}`).then(
      (r) => {
        setTx(r.transaction);
        setMessage({ ok: true, text: verb === "retry" ? `Retried: now ${r.transaction.status}.` : `Stopped: now ${r.transaction.status}.` });
        onChange();
      },
      (e: Error) => setMessage({ ok: false, text: e.message }),
    );

  if (error && !tx) return <section class="tx-detail"><p class="error tx-error">{error}</p></section>;
  if (!tx) return <section class="tx-detail"><p class="muted">Loading…</p></section>;
  const start = Number(tx.createdAtMs);
  const end = Math.max(start + 1, Number(tx.finishedAtMs) || Date.now(), ...tx.branches.map((b) => Number(b.updatedAtMs)), ...tx.attempts.map((a) => Number(a.atMs)));
  const pos = (ms: number) => `${(((ms - start) / (end - start)) * 100).toFixed(2)}%`;
  return (
    <section class="tx-detail" data-gid={tx.gid}>
      <h2>
        <code>{tx.gid}</code> <span class={`badge tx-status ${tx.status === "failed" ? "error" : ""}`}>{tx.status}</span> <span class="muted">{tx.mode}</span>
      </h2>
      {error && <p class="error tx-error">{error}</p>}
      <dl class="tx-facts">
        <dt>created</dt>
        <dd>{at(tx.createdAtMs)}</dd>
        <dt>finished</dt>
        <dd>{at(tx.finishedAtMs)}</dd>
        <dt>next round</dt>
        <dd>{FINAL.includes(tx.status) ? "—" : at(tx.nextAtMs)}</dd>
        <dt>rounds</dt>
        <dd>{tx.rounds}</dd>
        <dt>owner</dt>
        <dd>{tx.owner || "—"}</dd>
        <dt>last error</dt>
        <dd class="error tx-last-error">{tx.lastError || "—"}</dd>
      </dl>
      {canEdit && (
        <p>
          <button class="tx-retry" disabled={tx.status === "succeed"} onClick={() => act("retry")}>
            Retry now
          </button>
          <button class="tx-stop" disabled={FINAL.includes(tx.status)} onClick={() => act("stop")}>
            Force stop
          </button>
        </p>
      )}
      {message && <p class={`message ${message.ok ? "ok" : "error"}`}>{message.text}</p>}
      <h3>Branches</h3>
      <table class="branches">
        <thead>
          <tr>
            <th>branch</th>
            <th>op</th>
            <th>status</th>
            <th>calls</th>
            <th>method @ target</th>
            <th class="timeline-head">timeline (created → last change)</th>
            <th>last error</th>
          </tr>
        </thead>
        <tbody>
          {tx.branches.map((b) => (
            <tr key={`${b.branchId}/${b.op}`} class={`branch-row ${b.status === "failed" ? "failed" : ""}`} data-branch={b.branchId} data-op={b.op} data-status={b.status}>
              <td>{b.branchId}</td>
              <td>{b.op}</td>
              <td>{b.status}</td>
              <td class="attempts">{b.attempts}</td>
              <td>
                <code>{b.method}</code> @ {b.target}
              </td>
              <td class="timeline">
                <div class="bar-track">
                  {tx.attempts
                    .filter((a) => a.branchId === b.branchId && a.op === b.op)
                    .map((a, i) => (
                      <span key={i} class={`tick ${a.code === 0 ? "ok" : "bad"}`} style={{ left: pos(Number(a.atMs)) }} title={`${at(a.atMs)} ${CODES[a.code] ?? a.code} ${a.error}`} />
                    ))}
                  {Number(b.updatedAtMs) > 0 && <span class={`tick last ${b.status}`} style={{ left: pos(Number(b.updatedAtMs)) }} title={`${b.status} at ${at(b.updatedAtMs)}`} />}
                </div>
              </td>
              <td class="error small last-error">{b.lastError}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {tx.attempts.length > 0 && (
        <>
          <h3>Recorded attempts</h3>
          <table class="attempts-table">
            <thead>
              <tr>
                <th>when</th>
                <th>branch</th>
                <th>op</th>
                <th>status</th>
                <th>error</th>
              </tr>
            </thead>
            <tbody>
              {tx.attempts.map((a, i) => (
                <tr key={i} class="attempt-row" data-branch={a.branchId} data-code={CODES[a.code] ?? String(a.code)}>
                  <td>{at(a.atMs)}</td>
                  <td>{a.branchId}</td>
                  <td>{a.op}</td>
                  <td>{CODES[a.code] ?? a.code}</td>
                  <td class="error small">{a.error}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
