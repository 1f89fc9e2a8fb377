/**
 * Request/response over Node's IPC channel, between the orchestrator and its worker
 * processes. A worker calls {@link serveCommands} with its handlers; the orchestrator
 * talks to it through `BenchWorker.call` (see `workers.ts`).
 */

export interface CommandRequest {
  readonly id: number;
  readonly command: string;
  readonly args: unknown;
}

export type CommandReply = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: string };

/** Sent once by a worker when its handlers are installed. */
export const READY_MESSAGE = "bench-worker-ready";

/**
 * Answers commands from the parent process. A handler's resolved value (plain JSON) is the
 * reply; a throw is reported to the caller as an error. The worker exits when the parent goes away.
 */
export function serveCommands(handlers: Record<string, (args: never) => unknown>): void {
  if (!process.send) throw new Error("bench worker started without an IPC channel; run it through `npm run bench`");
  process.on("message", (raw: unknown) => {
    const request = raw as CommandRequest;
    const handler = handlers[request.command];
    const reply = (message: CommandReply) => process.send?.(message);
    if (!handler) {
      reply({ id: request.id, ok: false, error: `unknown command ${request.command}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(request.args as never))
      .then(
        (result) => reply({ id: request.id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ id: request.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on("disconnect", () => process.exit(0));
  process.send(READY_MESSAGE);
}
