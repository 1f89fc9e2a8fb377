import { expect } from "chai";
import { RpcError, Status, type Interceptor, type Server } from "protomesh";
import { startGreeter, greeterClient, collect } from "./helpers/greeter";

describe("runtime: interceptors", () => {
  let server: Server;
  let address: string;
  const order: string[] = [];

  const tag = (name: string): Interceptor => (next) => async (req) => {
    order.push(`${req.side}:${name}:before`);
    const res = await next(req);
    order.push(`${req.side}:${name}:after`);
    return res;
  };

  before(async () => {
    const started = await startGreeter(
      {
        async sayHello(req, ctx) {
          order.push("handler");
          return { message: `${req.name}|${String(ctx.metadata.get("x-client-tag")[0] ?? "")}` };
        },
      },
      { interceptors: [tag("s1")] },
    );
    server = started.server;
    address = started.address;
    server.use(tag("s2"));
    server.use((next) => async (req) => {
      if (req.metadata.get("x-deny")[0] === "1") throw new RpcError(Status.PERMISSION_DENIED, "denied by interceptor");
      return next(req);
    });
  });
  after(() => server.shutdown({ graceMs: 100 }));
  beforeEach(() => order.splice(0));

  it("runs client and server interceptors in the order added, around the handler", async () => {
    const client = greeterClient(address, { interceptors: [tag("c1"), tag("c2")] });
    await client.sayHello({ name: "a" });
    client.$close();
    expect(order).to.deep.equal([
      "client:c1:before",
      "client:c2:before",
      "server:s1:before",
      "server:s2:before",
      "handler",
      "server:s2:after",
      "server:s1:after",
      "client:c2:after",
      "client:c1:after",
    ]);
  });

  it("lets a client interceptor add metadata the handler sees", async () => {
    const addTag: Interceptor = (next) => (req) => {
      req.metadata.set("x-client-tag", "tagged");
      return next(req);
    };
    const client = greeterClient(address, { interceptors: [addTag] });
    const reply = await client.sayHello({ name: "b" });
    client.$close();
    expect(reply.message).to.equal("b|tagged");
  });

  it("lets a server interceptor reject a call before the handler runs", async () => {
    const client = greeterClient(address);
    const e = (await client.sayHello({ name: "c" }, { metadata: { "x-deny": "1" } }).catch((x: unknown) => x)) as RpcError;
    client.$close();
    expect(e.code).to.equal(Status.PERMISSION_DENIED);
    expect(order).not.to.include("handler");
  });

  it("lets a client interceptor rewrite a response and wrap a response stream", async () => {
    const upper: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!req.method.responseStream) return { response: { ...(res.response as { message: string }), message: (res.response as { message: string }).message.toUpperCase() } };
      const source = res.response as AsyncIterable<{ message: string }>;
      return {
        response: (async function* () {
          for await (const m of source) yield { ...m, message: `[${m.message}]` };
        })(),
      };
    };
    const client = greeterClient(address, { interceptors: [upper] });
    expect((await client.sayHello({ name: "d" })).message).to.equal("D|");
    const streamed = await collect(client.streamHellos({ name: "e", count: 2 }));
    client.$close();
    expect(streamed.map((m) => m.message)).to.deep.equal(["[Hello #1, e!]", "[Hello #2, e!]"]);
  });

  it("lets a client interceptor short-circuit without touching the network", async () => {
    const cache: Interceptor = () => async () => ({ response: { message: "cached", servedBy: "", at: undefined } });
    const client = greeterClient("127.0.0.1:1", { interceptors: [cache] });
    const reply = await client.sayHello({ name: "f" });
    client.$close();
    expect(reply.message).to.equal("cached");
  });
});
