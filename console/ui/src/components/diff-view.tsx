export interface Difference {
  path: string;
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

const show = (v: unknown) => (v === undefined ? "" : JSON.stringify(v));

/** Field-level differences, one row per changed leaf. */
export function DiffView({ diff, empty = "No differences." }: { diff: Difference[]; empty?: string }) {
  if (diff.length === 0) return <p class="muted diff-empty">{empty}</p>;
  return (
    <table class="diff">
      <thead>
        <tr>
          <th>field</th>
          <th>before</th>
          <th>after</th>
        </tr>
      </thead>
      <tbody>
        {diff.map((d) => (
          <tr key={d.path} class={`diff-${d.kind}`} data-path={d.path}>
            <td>
              <code>{d.path || "(whole value)"}</code>
            </td>
            <td class="before">{show(d.before)}</td>
            <td class="after">{show(d.after)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Before/after of any JSON values, as a field diff (for the audit log). */
export function jsonDiff(before: unknown, after: unknown, path = ""): Difference[] {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (isObj(before) && isObj(after)) {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])].sort().flatMap((k) => jsonDiff(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ path, kind: before === undefined ? "added" : after === undefined ? "removed" : "changed", before, after }];
}
