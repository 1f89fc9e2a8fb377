/**
 * A trace as a call tree that says what ran in series and what in parallel.
 * A span's children are ordered by start time and cut into stages: a child
 * that starts before every earlier sibling in its stage has ended overlaps
 * them and joins the stage (they ran in parallel); otherwise it starts a new
 * stage (it ran after them). Spans whose parent never arrived become roots,
 * so a partial trace still shows everything received.
 */
import type { TraceSpan } from "./span";

export interface TreeRow {
  readonly span: TraceSpan;
  readonly depth: number;
  /** Index of the stage among its siblings (0, 1, …): equal stages ran at the same time. */
  readonly stage: number;
  /** True when another sibling shares this stage. */
  readonly parallel: boolean;
  /** Span ids of siblings that ran at the same time as this one. */
  readonly parallelWith: readonly string[];
  /** Offset and width within the whole trace, 0–1, for the waterfall. */
  readonly offset: number;
  readonly width: number;
  readonly error: boolean;
}

/** Rows in depth-first order (a parent before its children), ready to draw. */
export function callTree(spans: readonly TraceSpan[]): TreeRow[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map<string, TraceSpan[]>();
  const roots: TraceSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    start = Math.min(start, s.startUs);
    end = Math.max(end, s.endUs);
  }
  const total = Math.max(1, end - start);
  const rows: TreeRow[] = [];
  const seen = new Set<string>();

  const emit = (siblings: TraceSpan[], depth: number) => {
    const stages = stagesOf(siblings);
    for (const [stage, group] of stages.entries()) {
      for (const span of group) {
        if (seen.has(span.spanId)) continue; // a cycle in bad data: show each span once
        seen.add(span.spanId);
        rows.push({
          span,
          depth,
          stage,
          parallel: group.length > 1,
          parallelWith: group.filter((g) => g !== span).map((g) => g.spanId),
          offset: (span.startUs - start) / total,
          width: Math.max(0, span.endUs - span.startUs) / total,
          error: span.status === "error",
        });
        emit(children.get(span.spanId) ?? [], depth + 1);
      }
    }
  };
  emit(roots, 0);
  // Spans caught in a parent cycle (bad data) are never reached from a root: show them anyway.
  const unreached = spans.filter((s) => !seen.has(s.spanId));
  if (unreached.length > 0) emit(unreached, 0);
  return rows;
}

/** Siblings cut into stages of overlapping spans, in start order. */
export function stagesOf(siblings: readonly TraceSpan[]): TraceSpan[][] {
  const sorted = [...siblings].sort((a, b) => a.startUs - b.startUs || a.endUs - b.endUs);
  const stages: TraceSpan[][] = [];
  let stageEnd = -Infinity;
  for (const s of sorted) {
    const current = stages.at(-1);
    if (current && s.startUs < stageEnd) {
      current.push(s);
      stageEnd = Math.max(stageEnd, s.endUs);
    } else {
      stages.push([s]);
      stageEnd = s.endUs;
    }
  }
  return stages;
}
