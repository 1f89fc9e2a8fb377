import { RpcError, Status, type CallContext } from "protomesh";
import type { GreeterHandlers } from "../../gen/examples/greeter/v1/greeter_protomesh";
import type { HelloRequest } from "../../gen/examples/greeter/v1/greeter";

/** The greeter's handlers: one per call kind. `servedBy` names the instance that answered. */
export function greeterHandlers(servedBy: string): GreeterHandlers {
  return {
    // Unary: one request, one reply.
    async sayHello(req: HelloRequest) {
      if (req.name === "") throw new RpcError(Status.INVALID_ARGUMENT, "name is required", { field: "name" });
      return { message: `Hello, ${req.name}!`, servedBy, at: new Date() };
    },

    // Server streaming: `count` replies, `intervalMs` apart; stops early if the caller goes away.
    async *streamHellos(req, ctx: CallContext) {
      const count = Math.min(req.count || 3, 1000);
      for (let i = 1; i <= count && !ctx.signal.aborted; i++) {
        yield { message: `Hello #${i}, ${req.name}!`, servedBy, at: new Date() };
        if (req.intervalMs > 0 && i < count) await sleep(req.intervalMs, ctx.signal);
      }
    },

    // Client streaming: read every request, answer once.
    async collectHellos(requests) {
      const names: string[] = [];
      for await (const r of requests) names.push(r.name);
      return { message: `Hello, ${names.join(", ") || "nobody"}!`, servedBy, at: new Date() };
    },

    // Bidirectional streaming: answer each request as it arrives.
    async *chat(requests) {
      for await (const r of requests) yield { message: `Hello, ${r.name}!`, servedBy, at: new Date() };
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
