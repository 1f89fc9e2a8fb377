import { useEffect, useState } from "preact/hooks";
import { get, qs } from "../api";
import { DiffView, jsonDiff } from "../components/diff-view";
import type { PageProps } from "./index";

interface Entry {
  at: string;
  who: string;
  via: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
}

export function AuditPage(_: PageProps) {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [q, setQ] = useState("");
  const [open, setOpen] = useState<number | null>(null);
  useEffect(() => void get<{ entries: Entry[] }>(`/api/audit?${qs({ q })}`).then((r) => setEntries(r.entries)), [q]);
  return (
    <div class="audit">
      <input id="audit-filter" placeholder="filter by who, action or target" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      <table class="audit-log">
        <thead>
          <tr>
            <th>when</th>
            <th>who</th>
            <th>via</th>
            <th>action</th>
            <th>target</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e, i) => [
            <tr key={i} class="audit-row" data-action={e.action} onClick={() => setOpen(open === i ? null : i)}>
              <td>{e.at}</td>
              <td>{e.who}</td>
              <td>{e.via}</td>
              <td>{e.action}</td>
              <td>{e.target}</td>
            </tr>,
            open === i && (
              <tr key={`${i}-d`} class="audit-detail">
                <td colSpan={5}>
                  <DiffView diff={jsonDiff(e.before, e.after)} />
                </td>
              </tr>
            ),
          ])}
        </tbody>
      </table>
      {entries.length === 0 && <p class="muted">No changes recorded yet.</p>}
    </div>
  );
}
