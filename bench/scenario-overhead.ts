/**
 * What protomesh adds per call with the network taken out (see `overhead-worker.ts`): the
 * steadiest numbers on a shared machine, and the ones that point at a line of code.
 */
import type { BenchContext } from "./context";
import type { OverheadResult } from "./overhead-worker";
import { table, type Section } from "./report";
import { BenchWorker } from "./workers";

const us = (n: number) => (n < 1 ? n.toFixed(3) : n.toFixed(2));

export async function runOverhead(ctx: BenchContext): Promise<Section> {
  const worker = await BenchWorker.start("overhead", "overhead-worker.ts", { cpu: ctx.cpus.client });
  try {
    ctx.log("overhead: measuring protomesh's own per-call work");
    const r = await worker.call<OverheadResult>("measure", { quick: ctx.quick });
    return {
      title: "7. What protomesh adds per call, network taken out",
      body: [
        "In one process on the client core, each layer fed a fake grpc-js call (no sockets, no HTTP/2): fastest of several runs, µs per call or message. For scale, a whole unary call costs the client and the server process each some 100–250 µs of CPU on this machine (scenario 1).",
        table(
          ["layer", "raw grpc-js way", "protomesh", "added"],
          [
            ["server: unary handler path (context, interceptors, call scope, handler, callback)", us(r.serverRaw), us(r.serverProtomesh), us(r.serverProtomesh - r.serverRaw)],
            ["server: serialize a 100 B reply (`fromPartial` + encode vs encode)", us(r.serializeEncodeOnly), us(r.serializeFromPartial), us(r.serializeFromPartial - r.serializeEncodeOnly)],
            ["client: unary call around the transport (serialization included)", us(r.clientRaw), us(r.clientProtomesh), us(r.clientProtomesh - r.clientRaw)],
            ["client: read one streamed 1 KiB message ('data' events vs protomesh's async iterable)", us(r.streamData), us(r.streamProtomesh), us(r.streamProtomesh - r.streamData)],
            ["client: the same, raw stream read with `for await` instead", us(r.streamData), us(r.streamForAwait), us(r.streamForAwait - r.streamData)],
            ["server: unary handler path, tracing on (OpenTelemetry SDK, spans dropped)", us(r.serverRaw), us(r.serverTraced), us(r.serverTraced - r.serverRaw)],
            ["client: unary call, tracing on", us(r.clientRaw), us(r.clientTraced), us(r.clientTraced - r.clientRaw)],
          ],
        ),
        table(
          ["suspect on its own", "µs"],
          [
            ["`new AbortController().signal` (what a handler that reads `ctx.signal` pays; the server makes it only then)", us(r.abortSignal)],
            ["`await` of a resolved promise, before any AsyncLocalStorage.run", us(r.awaitBeforeAls)],
            ["the same once AsyncLocalStorage has run (promise hooks on, process-wide)", us(r.awaitAfterAls)],
          ],
        ),
      ],
      goals: [],
      data: r,
    };
  } finally {
    await worker.stop();
  }
}
