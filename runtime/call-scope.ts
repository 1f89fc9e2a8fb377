import { AsyncLocalStorage } from "node:async_hooks";
import type { CallContext } from "./context";

/**
 * The handler context of the call being served, if any. Client calls made inside a
 * handler read it to inherit the remaining deadline and cancellation.
 */
const scope = new AsyncLocalStorage<CallContext>();

export function runInCallScope<T>(ctx: CallContext, fn: () => T): T {
  return scope.run(ctx, fn);
}

export function currentCallContext(): CallContext | undefined {
  return scope.getStore();
}
