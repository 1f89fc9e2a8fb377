/**
 * Server-sent events: a page subscribes with `EventSource` and hears small
 * "something changed" notes; it then re-reads what it shows. Notes are
 * coalesced per {@link FLUSH_MS}, so 10,000 registrations in a burst cost the
 * browser a handful of messages, not 10,000.
 */
import type * as http from "node:http";
import { SECURITY_HEADERS } from "./http-io";

export const FLUSH_MS = 50;
const HEARTBEAT_MS = 15_000;

export class EventHub<T> {
  private readonly clients = new Set<http.ServerResponse>();
  private pending: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  /** `merge` folds the notes of one flush window into one message. */
  constructor(
    private readonly event: string,
    private readonly merge: (notes: T[]) => unknown,
  ) {}

  /** Takes over a request as an event stream until the browser goes away. */
  subscribe(req: http.IncomingMessage, res: http.ServerResponse, hello?: unknown): void {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", ...SECURITY_HEADERS });
    res.write(`retry: 2000\n\n`);
    if (hello !== undefined) res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    this.clients.add(res);
    this.heartbeat ??= setInterval(() => this.broadcast(": keep-alive\n\n"), HEARTBEAT_MS).unref();
    const drop = () => {
      this.clients.delete(res);
      if (this.clients.size === 0 && this.heartbeat) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      }
    };
    req.on("close", drop);
    res.on("error", drop);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Queues a note; notes within one window go out together. */
  publish(note: T): void {
    if (this.clients.size === 0) return;
    this.pending.push(note);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const notes = this.pending;
      this.pending = [];
      this.broadcast(`event: ${this.event}\ndata: ${JSON.stringify(this.merge(notes))}\n\n`);
    }, FLUSH_MS);
  }

  close(): void {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }
}
