import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

/**
 * Renders only the rows in view (plus a margin) inside a scroller of the full
 * height, asking `rowsFor` for the visible window: a list of 10,000 costs
 * the browser ~40 rows of DOM.
 */
export function VirtualList<T>(props: {
  total: number;
  rowHeight: number;
  height: number;
  /** Rows for [start, end), or undefined while they load. */
  rowAt: (index: number) => T | undefined;
  onRange: (start: number, end: number) => void;
  render: (row: T, index: number) => ComponentChildren;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const overscan = 10;
  const start = Math.max(0, Math.floor(scrollTop / props.rowHeight) - overscan);
  const end = Math.min(props.total, Math.ceil((scrollTop + props.height) / props.rowHeight) + overscan);
  useEffect(() => props.onRange(start, end), [start, end, props.total]);
  const rows = [];
  for (let i = start; i < end; i++) {
    const row = props.rowAt(i);
    rows.push(
      <div key={i} class="vrow" style={{ top: `${i * props.rowHeight}px`, height: `${props.rowHeight}px` }}>
        {row === undefined ? <span class="muted">…</span> : props.render(row, i)}
      </div>,
    );
  }
  return (
    <div class="vlist" ref={ref} style={{ height: `${props.height}px` }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
      <div style={{ height: `${props.total * props.rowHeight}px`, position: "relative" }}>{rows}</div>
    </div>
  );
}
