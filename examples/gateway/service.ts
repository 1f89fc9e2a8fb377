import { RpcError, Status, type CallContext } from "protomesh";
import type { HttpGreeterHandlers } from "../../gen/examples/gateway/v1/greeter_http_protomesh";

/** The HTTP greeter's handlers; `servedBy` names the instance that answered. */
export function httpGreeterHandlers(servedBy: string): HttpGreeterHandlers {
  return {
    async sayHello(req) {
      if (req.name === "") throw new RpcError(Status.INVALID_ARGUMENT, "name is required", { field: "name" });
      if (req.name === "nobody") throw new RpcError(Status.NOT_FOUND, "nobody is not here", { who: "nobody" });
      return { message: `Hello, ${req.name}!`, servedBy, at: new Date() };
    },
    async getGreeting(req) {
      return { message: `Hello, ${req.name}!`, servedBy };
    },
    async updateGreeting(req) {
      const g = req.greeting ?? { name: "", text: "", language: "" };
      const paths = req.updateMask ?? [];
      return { name: g.name, text: paths.length === 0 || paths.includes("text") ? g.text : "", language: paths.length === 0 || paths.includes("language") ? g.language : "" };
    },
    // Echo hands back what the gateway built: the mapping from path, query and body is visible.
    async echo(req, ctx: CallContext) {
      const userId = ctx.metadata.get("x-user-id")[0];
      return { ...req, displayName: req.displayName || (typeof userId === "string" ? `user:${userId}` : "") };
    },
    async *streamHellos(req, ctx: CallContext) {
      const count = Math.min(req.count || 3, 1000);
      for (let i = 1; i <= count && !ctx.signal.aborted; i++) {
        if (req.name === "fail" && i === 2) throw new RpcError(Status.ABORTED, "stream broke on purpose");
        yield { message: `Hello #${i}, ${req.name}!`, servedBy };
        if (req.intervalMs > 0 && i < count) await sleep(req.intervalMs, ctx.signal);
      }
    },
    async collectHellos(requests) {
      const names: string[] = [];
      for await (const r of requests) names.push(r.name);
      return { message: `Hello, ${names.join(", ") || "nobody"}!`, servedBy };
    },
    async unannotated(req) {
      return { message: `Hello from the default route, ${req.name}!`, servedBy };
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
