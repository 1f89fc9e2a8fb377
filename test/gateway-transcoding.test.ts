import { expect } from "chai";
import type { Server } from "protomesh";
import type { Gateway } from "../gateway";
import { startGateway, startHttpGreeter } from "./helpers/gateway";

async function json(res: Response): Promise<unknown> {
  return JSON.parse(await res.text());
}

describe("gateway transcoding (HTTP/JSON → gRPC → HTTP/JSON against a real greeter)", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };

  before(async () => {
    greeter = await startHttpGreeter();
    gw = await startGateway(greeter.address, { unannotated: true });
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  it("answers GET with a path variable", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Ada`);
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("application/json");
    const body = (await json(res)) as Record<string, unknown>;
    expect(body.message).to.equal("Hello, Ada!");
    expect(body.servedBy).to.equal("g1");
    expect(body.at).to.match(/^\d{4}-\d\d-\d\dT.*Z$/);
  });

  it("serves additional_bindings: POST with the whole body", async () => {
    const res = await fetch(`${gw.url}/v1/hello`, { method: "POST", body: JSON.stringify({ name: "Bob" }), headers: { "content-type": "application/json" } });
    expect(res.status).to.equal(200);
    expect(((await json(res)) as { message: string }).message).to.equal("Hello, Bob!");
  });

  it("returns only the response_body field", async () => {
    const res = await fetch(`${gw.url}/v1/greetings/Cy/text`);
    expect(await json(res)).to.equal("Hello, Cy!");
  });

  it("puts a body field, a nested path variable and a FieldMask from the query together", async () => {
    const res = await fetch(`${gw.url}/v1/greetings/g7?updateMask=text`, {
      method: "PATCH",
      body: JSON.stringify({ text: "hi", language: "en", name: "ignored" }),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).to.equal(200);
    // The path variable wins over the body's name; the mask drops language.
    expect(await json(res)).to.deep.equal({ name: "greetings/g7", text: "hi" });
  });

  it("fills every kind of field from the query string", async () => {
    const q = [
      "big=-9007199254740991",
      "ubig=9007199254740991",
      "flag=true",
      "ratio=1.5",
      "mood=MOOD_GRUMPY",
      "tags=a&tags=b+c",
      "numbers=1&numbers=2",
      "nested.level=3",
      "when=2026-12-01T10:00:00Z",
      "wait=1.5s",
      "mask=a.b,c",
      "maybe=42",
      "blob=aGk%3D",
      "attrs%5Bk1%5D=v1&attrs[k2]=v2",
      "shownAs=Zed",
      "opt_flag=false",
    ].join("&");
    const res = await fetch(`${gw.url}/v1/echo/id%201/lbl?${q}`);
    expect(res.status, await res.clone().text()).to.equal(200);
    expect(await json(res)).to.deep.equal({
      id: "id 1",
      big: "-9007199254740991",
      ubig: "9007199254740991",
      flag: true,
      ratio: 1.5,
      mood: "MOOD_GRUMPY",
      tags: ["a", "b c"],
      numbers: [1, 2],
      nested: { label: "lbl", level: 3 },
      when: "2026-12-01T10:00:00Z",
      wait: "1.500s", // proto3 JSON writes 0, 3, 6 or 9 fractional digits
      mask: "a.b,c",
      maybe: "42",
      blob: "aGk=",
      attrs: { k1: "v1", k2: "v2" },
      shownAs: "Zed",
      optFlag: false,
    });
  });

  it("accepts proto names and enum numbers in the query", async () => {
    const res = await fetch(`${gw.url}/v1/echo/x/y?display_name=P&mood=1&opt_flag=1`);
    expect(await json(res)).to.deep.include({ shownAs: "P", mood: "MOOD_HAPPY", optFlag: true });
  });

  it("keeps %2F inside a multi-segment variable and matches the deep wildcard", async () => {
    const res = await fetch(`${gw.url}/v1/files/a/b%2Fc/d.txt`);
    expect(((await json(res)) as { path: string }).path).to.equal("files/a/b%2Fc/d.txt");
  });

  it("routes a registered custom verb, with the path variable before it", async () => {
    const res = await fetch(`${gw.url}/v1/echo/item:check`, { method: "POST", body: JSON.stringify({ big: 5 }), headers: { "content-type": "application/json" } });
    expect(await json(res)).to.deep.equal({ id: "item", big: "5" });
  });

  it("routes an unannotated method at POST /package.Service/Method when enabled", async () => {
    const res = await fetch(`${gw.url}/examples.gateway.v1.HttpGreeter/Unannotated`, { method: "POST", body: '{"name":"D"}' });
    expect(((await json(res)) as { message: string }).message).to.equal("Hello from the default route, D!");
  });

  it("streams server replies as NDJSON, one frame per message", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Eve/stream?count=3`);
    expect(res.headers.get("content-type")).to.equal("application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { result: { message: string } });
    expect(lines.map((l) => l.result.message)).to.deep.equal(["Hello #1, Eve!", "Hello #2, Eve!", "Hello #3, Eve!"]);
  });

  it("streams as Server-Sent Events when asked, with the error as the last event", async () => {
    const res = await fetch(`${gw.url}/v1/hello/fail/stream?count=3`, { headers: { accept: "text/event-stream" } });
    expect(res.headers.get("content-type")).to.equal("text/event-stream");
    const events = (await res.text()).trim().split("\n\n");
    expect(events).to.have.length(2);
    expect(JSON.parse(events[0].replace(/^data: /, ""))).to.deep.include({ message: "Hello #1, fail!" });
    expect(events[1].split("\n")[0]).to.equal("event: error");
    expect(JSON.parse(events[1].split("\n")[1].replace(/^data: /, ""))).to.deep.include({ code: 10, message: "stream broke on purpose" });
  });

  it("reads a client stream from a JSON array and from NDJSON", async () => {
    const a = await fetch(`${gw.url}/v1/hellos:collect`, { method: "POST", body: '[{"name":"a"},{"name":"b"}]', headers: { "content-type": "application/json" } });
    expect(((await json(a)) as { message: string }).message).to.equal("Hello, a, b!");
    const n = await fetch(`${gw.url}/v1/hellos:collect`, { method: "POST", body: '{"name":"c"}\n{"name":"d"}\n', headers: { "content-type": "application/x-ndjson" } });
    expect(((await json(n)) as { message: string }).message).to.equal("Hello, c, d!");
  });

  it("turns an upstream error into its HTTP status and a google.rpc.Status body with details", async () => {
    const res = await fetch(`${gw.url}/v1/hello/nobody`);
    expect(res.status).to.equal(404);
    expect(await json(res)).to.deep.equal({ code: 5, message: "nobody is not here", details: [{ "@type": "type.googleapis.com/google.protobuf.Value", value: { who: "nobody" } }] });
  });

  it("passes response metadata as prefixed headers and a request id both ways", async () => {
    const res = await fetch(`${gw.url}/v1/hello/Ada`, { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).to.equal("abc-123");
  });
});
