import { UsageError } from "../../cli/command";

/** `version=v2,zone=a` → `{ version: "v2", zone: "a" }`. */
export function parseLabels(flag: string, text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq <= 0 || key === "" || value === "") throw new UsageError(`${flag}: use label=value[,label=value], got ${JSON.stringify(text)}`);
    labels[key] = value;
  }
  return labels;
}

export function formatLabels(labels: Readonly<Record<string, string | string[]>>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : v}`).join(",");
}
