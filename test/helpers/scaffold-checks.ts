/**
 * Checks of a scaffolded project's monitoring files that need no Grafana: the metric names a
 * PromQL expression reads, the metric families a `/metrics` page declares, and the dashboard
 * fields Grafana needs to import and draw a dashboard.
 */

const PROMQL_KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/** Metric names an expression selects (functions, labels, keywords, durations and strings left out). */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // ranges, subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // grouping labels
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined) continue; // a function call
    if (PROMQL_KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names].sort();
}

/** Every series name a Prometheus text page can hold, from its `# TYPE` lines (histogram and summary parts included). */
export function exportedMetricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

interface DashboardPanel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  gridPos?: { h?: unknown; w?: unknown; x?: unknown; y?: unknown };
  datasource?: { type?: unknown; uid?: unknown };
  targets?: Array<{ refId?: unknown; expr?: unknown; datasource?: { uid?: unknown } }>;
}

/** A Grafana dashboard as this check reads it. */
export interface Dashboard {
  title?: unknown;
  uid?: unknown;
  schemaVersion?: unknown;
  time?: { from?: unknown; to?: unknown };
  templating?: { list?: Array<{ name?: unknown; type?: unknown; query?: unknown }> };
  panels?: DashboardPanel[];
}

const PANEL_TYPES = new Set(["row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap", "piechart"]);

/** What Grafana would refuse or draw wrongly, as sentences; empty when the dashboard is sound. */
export function dashboardProblems(d: Dashboard): string[] {
  const problems: string[] = [];
  if (typeof d.title !== "string" || d.title === "") problems.push("no title");
  if (typeof d.uid !== "string" || !/^[a-zA-Z0-9_-]{1,40}$/.test(d.uid)) problems.push(`uid ${JSON.stringify(d.uid)} is not 1-40 characters of [a-zA-Z0-9_-]`);
  if (typeof d.schemaVersion !== "number" || d.schemaVersion < 30) problems.push(`schemaVersion ${JSON.stringify(d.schemaVersion)} is missing or older than Grafana 8`);
  if (typeof d.time?.from !== "string" || typeof d.time?.to !== "string") problems.push("no time range");
  const variables = new Map((d.templating?.list ?? []).map((v) => [String(v.name), v]));
  if (!Array.isArray(d.panels) || d.panels.length === 0) return [...problems, "no panels"];
  const ids = new Set<unknown>();
  for (const p of d.panels) {
    const what = `panel ${JSON.stringify(p.title)}`;
    if (typeof p.id !== "number" || ids.has(p.id)) problems.push(`${what}: id ${JSON.stringify(p.id)} missing or repeated`);
    ids.add(p.id);
    if (typeof p.type !== "string" || !PANEL_TYPES.has(p.type)) problems.push(`${what}: unknown type ${JSON.stringify(p.type)}`);
    if (typeof p.title !== "string" || p.title === "") problems.push(`panel ${JSON.stringify(p.id)}: no title`);
    const g = p.gridPos;
    const grid = [g?.h, g?.w, g?.x, g?.y];
    if (!grid.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 0)) problems.push(`${what}: gridPos needs whole h, w, x, y`);
    else if ((g!.x as number) + (g!.w as number) > 24) problems.push(`${what}: wider than the 24-column grid`);
    if (p.type === "row") continue;
    if (!Array.isArray(p.targets) || p.targets.length === 0) problems.push(`${what}: no queries`);
    const refIds = new Set<unknown>();
    for (const t of p.targets ?? []) {
      if (typeof t.refId !== "string" || refIds.has(t.refId)) problems.push(`${what}: refId ${JSON.stringify(t.refId)} missing or repeated`);
      refIds.add(t.refId);
      if (typeof t.expr !== "string" || t.expr.trim() === "") problems.push(`${what}: a query without expr`);
      for (const used of String(t.expr).matchAll(/\$(?!__)(\w+)/g)) if (!variables.has(used[1]!)) problems.push(`${what}: uses $${used[1]}, which no template variable defines`);
    }
    for (const uid of [p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)]) {
      const variable = /^\$\{?(\w+)\}?$/.exec(String(uid));
      if (!variable || variables.get(variable[1]!)?.type !== "datasource") problems.push(`${what}: datasource ${JSON.stringify(uid)} is not the dashboard's data source variable`);
    }
  }
  return problems;
}
