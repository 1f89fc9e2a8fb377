/**
 * Measurement devices (not fixes) that sever the retainer paths found on Node 24 (docs/benchmarks.md,
 * "Why finished calls outlive scavenges") in a client process: `bind` replaces
 * `AsyncResource.prototype.bind` with one that defines no `asyncResource` accessor, `listeners`
 * removes a closed HTTP/2 client stream's listeners, `wipe` clears all its own properties and its
 * stream states'. Used by `bench/scavenge-survivors.ts --cut` and `bench/trace-gc.ts --cut-client`.
 */
import { AsyncResource } from "node:async_hooks";
// The module object itself (an `import * as` namespace is read-only), so a cut can wrap `connect`.
import http2 = require("node:http2");

export const CUTS = ["bind", "listeners", "wipe"] as const;
export type Cut = (typeof CUTS)[number];

export function parseCuts(list: string): Cut[] {
  const cuts = list.split(",").filter(Boolean);
  for (const c of cuts) if (!(CUTS as readonly string[]).includes(c)) throw new Error(`unknown --cut ${JSON.stringify(c)}: ${CUTS.join(", ")}`);
  return cuts as Cut[];
}

/** Installs the measurement devices of `--cut` in this process (before any client exists). */
export function installCuts(cuts: Cut[]): void {
  if (cuts.includes("bind")) {
    AsyncResource.prototype.bind = function bind<Func extends (...args: any[]) => any>(this: AsyncResource, fn: Func, thisArg?: unknown): Func {
      if (thisArg !== undefined) return Function.prototype.bind.call(this.runInAsyncScope, this, fn, thisArg) as Func;
      const resource = this;
      return function (this: unknown, ...args: unknown[]) {
        return Reflect.apply(resource.runInAsyncScope, resource, [fn, this, ...args]);
      } as Func;
    } as typeof AsyncResource.prototype.bind;
  }
  const cutStream = cuts.includes("wipe") ? "wipe" : cuts.includes("listeners") ? "listeners" : undefined;
  if (!cutStream) return;
  const connect = http2.connect;
  http2.connect = function (this: unknown, ...args: Parameters<typeof http2.connect>) {
    const session = Reflect.apply(connect, this, args) as http2.ClientHttp2Session;
    const request = session.request;
    session.request = function (this: http2.ClientHttp2Session, ...a: Parameters<typeof request>) {
      const stream = Reflect.apply(request, this, a) as http2.ClientHttp2Stream;
      stream.once("close", () =>
        setImmediate(() => {
          if (cutStream === "wipe") wipeStream(stream);
          else stream.removeAllListeners();
        }),
      );
      return stream;
    } as typeof request;
    return session;
  } as typeof http2.connect;
}


/** Clears every own property of a closed HTTP/2 stream and of its two stream states. */
function wipeStream(stream: http2.Http2Stream): void {
  const s = stream as unknown as { _readableState?: object; _writableState?: object };
  for (const o of [s._readableState, s._writableState, stream]) {
    if (!o) continue;
    for (const k of Reflect.ownKeys(o)) {
      try {
        (o as Record<PropertyKey, unknown>)[k] = undefined;
      } catch {
        // read-only: leave it
      }
    }
  }
}

/**
 * The server-side device (`bench/trace-gc.ts --wipe-server-streams`): wraps `http2.createServer`
 * (before grpc-js calls it) so every closed server stream is wiped in the next turn.
 */
export function wipeServerStreams(): void {
  const createServer = http2.createServer;
  http2.createServer = function (this: unknown, ...args: unknown[]) {
    const server = Reflect.apply(createServer, this, args) as http2.Http2Server;
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      stream.once("close", () => setImmediate(() => wipeStream(stream)));
    });
    return server;
  } as typeof http2.createServer;
}
