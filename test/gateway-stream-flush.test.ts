import { expect } from "chai";
import * as http from "node:http";
import type { Server } from "protomesh";
import type { Gateway } from "../gateway";
import { startGateway, startHttpGreeter } from "./helpers/gateway";

/**
 * A server-streaming route flushes each message as it arrives: the upstream
 * sends one message, waits ~300 ms, sends another, and the HTTP client has the
 * first frame before the upstream sends the second, as NDJSON and as SSE.
 */

const PAUSE_MS = 300;

describe("gateway streaming: each message reaches the client before the next is sent", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };
  /** performance.now() when the upstream handed over its second message, per request name. */
  const secondSentAt = new Map<string, number>();

  before(async () => {
    greeter = await startHttpGreeter({
      async *streamHellos(req) {
        yield { message: `first for ${req.name}`, servedBy: "g1" };
        await new Promise((r) => setTimeout(r, PAUSE_MS));
        secondSentAt.set(req.name, performance.now());
        yield { message: `second for ${req.name}`, servedBy: "g1" };
      },
    });
    gw = await startGateway(greeter.address);
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  /** GETs the stream; resolves with each chunk as it arrived (text and time) and the content type. */
  function read(name: string, accept?: string): Promise<{ contentType: string; chunks: { at: number; text: string }[] }> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${gw.url}/v1/hello/${name}/stream`, { agent: false, headers: accept ? { accept } : {} }, (res) => {
        const chunks: { at: number; text: string }[] = [];
        res.setEncoding("utf8");
        res.on("data", (text: string) => chunks.push({ at: performance.now(), text }));
        res.on("end", () => resolve({ contentType: String(res.headers["content-type"]), chunks }));
        res.on("error", reject);
      });
      req.on("error", reject);
    });
  }

  /** The time the first complete frame was in the client's hands, and every frame's payload. */
  function frames(chunks: { at: number; text: string }[], separator: string): { firstAt: number; payloads: string[] } {
    let text = "";
    let firstAt = Infinity;
    for (const c of chunks) {
      text += c.text;
      if (firstAt === Infinity && text.includes(separator)) firstAt = c.at;
    }
    return { firstAt, payloads: text.split(separator).filter((f) => f !== "") };
  }

  it("NDJSON: the first line arrives before the second message is sent", async () => {
    const { contentType, chunks } = await read("nd");
    expect(contentType).to.equal("application/x-ndjson");
    const { firstAt, payloads } = frames(chunks, "\n");
    expect(payloads.map((p) => (JSON.parse(p) as { result: { message: string } }).result.message)).to.deep.equal(["first for nd", "second for nd"]);
    expect(firstAt, "first frame received before the second was sent").to.be.below(secondSentAt.get("nd")!);
  });

  it("SSE: the first event arrives before the second message is sent", async () => {
    const { contentType, chunks } = await read("sse", "text/event-stream");
    expect(contentType).to.equal("text/event-stream");
    const { firstAt, payloads } = frames(chunks, "\n\n");
    expect(payloads.map((p) => (JSON.parse(p.replace(/^data: /, "")) as { message: string }).message)).to.deep.equal(["first for sse", "second for sse"]);
    expect(firstAt, "first event received before the second was sent").to.be.below(secondSentAt.get("sse")!);
  });
});
