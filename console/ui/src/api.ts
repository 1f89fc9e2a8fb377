/** The console's HTTP API as the page uses it: JSON in and out, the CSRF header on writes. */

export interface PageInfo {
  name: string;
  title: string;
  info?: unknown;
}

export interface SessionInfo {
  user: string;
  role: "viewer" | "editor" | "admin";
  csrf: string;
  auth: "none" | "users";
  pages: PageInfo[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

let csrf = "";

export function setCsrf(token: string): void {
  csrf = token;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: method === "GET" ? {} : { "content-type": "application/json", "x-csrf-token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const e = json as { error?: string; details?: unknown } | null;
    throw new ApiError(res.status, e?.error ?? `HTTP ${res.status}`, e?.details);
  }
  return json as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);

/** Subscribes to a server-sent event stream; returns the unsubscribe function. */
export function subscribe(path: string, event: string, onEvent: (data: unknown) => void): () => void {
  const source = new EventSource(path);
  source.addEventListener(event, (e) => onEvent(JSON.parse((e as MessageEvent<string>).data)));
  return () => source.close();
}

export const qs = (params: Record<string, string | number | undefined>) =>
  new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => [k, String(v)])).toString();
