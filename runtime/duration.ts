/**
 * Durations as operators write them on command lines, in release specs and transaction queries: Go's syntax
 * (`250ms`, `1.5s`, `2m`, `1h30m`), which grpc_health_probe, Argo Rollouts and Flagger all use.
 */

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;

/** Milliseconds in `text` (`"1m30s"` → 90000); throws a `RangeError` naming the text. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  PART.lastIndex = 0;
  let total = 0;
  let matched = 0;
  for (let m = PART.exec(trimmed); m !== null; m = PART.exec(trimmed)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = PART.lastIndex;
  }
  if (trimmed === "" || matched !== trimmed.length) {
    throw new RangeError(`bad duration ${JSON.stringify(text)}: use a number with a unit, e.g. 250ms, 10s, 2m, 1h30m`);
  }
  return total;
}

/** `90000` → `"1m30s"`; sub-second values in ms. For status lines, not for parsing back exactly. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ""}`;
}
