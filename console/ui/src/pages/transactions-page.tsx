import { useEffect, useState } from "preact/hooks";
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
const CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/** The coordinator's transactions: filter by status and mode, one transaction's branches, attempts and last errors, retry and stop. */
export function TransactionsPage({ session, path, info }: PageProps) {
  const meta = info as Info;
  const [filter, setFilter] = useState({ status: "", mode: "" });
  const [list, setList] = useState<{ transactions: Tx[]; nextPage: string } | null>(null);
  const [error, setError] = useState("");
  const [selected, setSelected] = useState(path[0] ?? "");
  const [limit, setLimit] = useState(PAGE);
  const canEdit = session.role !== "viewer";
  useEffect(() => {
    if (path[0]) setSelected(path[0]);
  }, [path[0]]);

  const load = () =>
    get<{ transactions: Tx[]; nextPage: string }>(`/api/transactions?${qs({ ...filter, limit })}`).then(
      (r) => {
        setList(r);
        setError("");
      },
      (e: Error) => setError(e.message),
    );
  // The coordinator's store is not in etcd, so there is no watch to follow: the list is re-read every few seconds.
  useEffect(() => {
    void load();
    const t = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(t);
  }, [filter.status, filter.mode, limit]);

  return (
    <div class="transactions">
      <section class="tx-list">
        <div class="toolbar">
          <select id="tx-status" value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.currentTarget.value })}>
            <option value="">any status</option>
            {meta.statuses.map((s) => (
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
          <button class="link" onClick={() => void load()}>
            refresh
          </button>
          <span class="muted small">coordinator {meta.coordinator}</span>
        </div>
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
                    setSelected(t.gid);
                    location.hash = `#/transactions/${encodeURIComponent(t.gid)}`;
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
