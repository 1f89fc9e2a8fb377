import { expect } from "chai";
import type { Server } from "protomesh";
import type { Gateway } from "../gateway";
import { startGateway, startHttpGreeter } from "./helpers/gateway";

/**
 * The response JSON's two options in the route policy: `useProtoNames` (field names as the proto
 * spells them) and `emitDefaults` (zero values written), each answered both ways against a
 * real greeter. `HelloReply.served_by` is `servedBy` in JSON; `EchoRequest.display_name` has
 * `json_name = "shownAs"`.
 */
describe("gateway JSON output: useProtoNames and emitDefaults (route policy)", function () {
  this.timeout(30_000);
  let greeter: { server: Server; address: string };
  let gw: { gateway: Gateway; url: string };

  before(async () => {
    greeter = await startHttpGreeter({}, "g-json");
    gw = await startGateway(greeter.address);
  });
  after(async () => {
    await gw?.gateway.close();
    await greeter?.server.shutdown();
  });

  const get = async (path: string) => {
    const r = await fetch(`${gw.url}${path}`);
    expect(r.status).to.equal(200);
    return r;
  };

  it("writes JSON names by default, proto names with useProtoNames (unary, both spellings of the name)", async () => {
    gw.gateway.setPolicy({});
    const json = (await (await get("/v1/hello/Ada")).json()) as Record<string, unknown>;
    expect(json).to.include({ message: "Hello, Ada!", servedBy: "g-json" });
    expect(json).not.to.have.property("served_by");
    const echo = (await (await get("/v1/echo/e1/lbl?display_name=Zed")).json()) as Record<string, unknown>;
    expect(echo).to.include({ shownAs: "Zed" });

    gw.gateway.setPolicy({ services: { "examples.gateway.v1.HttpGreeter": { useProtoNames: true } } });
    const proto = (await (await get("/v1/hello/Ada")).json()) as Record<string, unknown>;
    expect(proto).to.include({ message: "Hello, Ada!", served_by: "g-json" });
    expect(proto).not.to.have.property("servedBy");
    const echoProto = (await (await get("/v1/echo/e1/lbl?display_name=Zed")).json()) as Record<string, unknown>;
    expect(echoProto).to.include({ display_name: "Zed" });
    expect(echoProto).not.to.have.property("shownAs");
  });

  it("applies useProtoNames per method, to streamed messages, and keeps response_body working", async () => {
    gw.gateway.setPolicy({ methods: { "examples.gateway.v1.HttpGreeter.StreamHellos": { useProtoNames: true } } });
    const lines = (await (await get("/v1/hello/Eve/stream?count=2")).text()).trim().split("\n").map((l) => JSON.parse(l) as { result: Record<string, unknown> });
    expect(lines.map((l) => l.result)).to.deep.equal([
      { message: "Hello #1, Eve!", served_by: "g-json" },
      { message: "Hello #2, Eve!", served_by: "g-json" },
    ]);
    // Another method of the service is not affected.
    expect(await (await get("/v1/hello/Ada")).json()).to.have.property("servedBy");
    gw.gateway.setPolicy({ defaults: { useProtoNames: true } });
    expect(await (await get("/v1/greetings/Cy/text")).json()).to.equal("Hello, Cy!");
  });

  it("leaves zero values out by default, writes them with emitDefaults, and the two combine", async () => {
    gw.gateway.setPolicy({});
    const plain = (await (await get("/v1/echo/e2/lbl")).json()) as Record<string, unknown>;
    expect(plain).to.deep.equal({ id: "e2", nested: { label: "lbl" } });

    gw.gateway.setPolicy({ defaults: { emitDefaults: true } });
    const full = (await (await get("/v1/echo/e2/lbl")).json()) as Record<string, unknown>;
    expect(full).to.include({ id: "e2", big: "0", ubig: "0", flag: false, ratio: 0, mood: "MOOD_UNSPECIFIED", path: "", shownAs: "" });
    expect(full).to.deep.include({ tags: [], numbers: [], attrs: {}, blob: "", nested: { label: "lbl", level: 0 } });

    gw.gateway.setPolicy({ defaults: { emitDefaults: true, useProtoNames: true } });
    const both = (await (await get("/v1/echo/e2/lbl")).json()) as Record<string, unknown>;
    expect(both).to.include({ id: "e2", display_name: "", big: "0" });
    expect(both).not.to.have.property("shownAs");
  });

  it("refuses a useProtoNames that is not a boolean, naming the field", () => {
    expect(() => gw.gateway.setPolicy({ defaults: { useProtoNames: "yes" as unknown as boolean } })).to.throw(/defaults\.useProtoNames: must be true or false/);
    gw.gateway.setPolicy({ defaults: { useProtoNames: false } });
  });
});
