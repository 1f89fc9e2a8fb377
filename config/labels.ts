/**
 * Instance labels and the rules of a gray release. A rule matches an instance
 * when every `key=value` of the rule is among the instance's labels.
 */

/** Labels of an instance, or the `key=value` pairs of a gray rule. */
export type Labels = Readonly<Record<string, string>>;

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const MAX_VALUE_LENGTH = 200;

/** Parses `zone=b,canary=true`; throws on a malformed pair. An empty string is no labels. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw new Error(`label ${JSON.stringify(part.trim())} is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (Object.hasOwn(labels, key)) throw new Error(`label ${JSON.stringify(key)} is given twice`);
    labels[key] = value;
  }
  return checkLabels(labels);
}

/** Throws unless keys and values are usable; returns a plain copy. */
export function checkLabels(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (!KEY_PATTERN.test(key)) {
      throw new Error(`invalid label key ${JSON.stringify(key)}: use 1-63 characters from [A-Za-z0-9._/-], starting with a letter or digit`);
    }
    if (typeof value !== "string" || value.length > MAX_VALUE_LENGTH || /[,\n]/.test(value)) {
      throw new Error(`invalid value for label ${JSON.stringify(key)}: a string of at most ${MAX_VALUE_LENGTH} characters without commas or newlines`);
    }
    out[key] = value;
  }
  return out;
}

/** True when every pair of `rule` is among `labels`. An empty rule matches nothing. */
export function matchesLabels(rule: Labels, labels: Labels): boolean {
  const pairs = Object.entries(rule);
  return pairs.length > 0 && pairs.every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

/** `zone=b,canary=true`, keys sorted. */
export function formatLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}
