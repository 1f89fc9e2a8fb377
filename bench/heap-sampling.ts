/** What the benches that read V8's sampling heap profiler share. */
import type * as inspector from "node:inspector";

/** A node of `HeapProfiler.stopSampling`'s profile tree. */
export interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** `session.post` as a promise. */
export function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params as never, (err, r) => (err ? reject(err) : resolve(r as T))));
}
