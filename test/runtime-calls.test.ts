import { expect } from "chai";
import { Metadata } from "protomesh";
import { startGreeter, greeterClient, collect, type GreeterDefinition } from "./helpers/greeter";
import type { Server } from "protomesh";

describe("runtime: the four call kinds end to end", () => {
  let server: Server;
  let client: ReturnType<typeof greeterClient>;

  before(async () => {
    const started = await startGreeter({
      async sayHello(req, ctx) {
        ctx.responseHeader.set("x-served", "yes");
        ctx.responseTrailer.set("x-trailer", "bye");
        const echo = ctx.metadata.get("x-echo")[0];
        return { message: `Hello, ${req.name}!${echo ? ` (${String(echo)})` : ""}`, servedBy: "t" };
      },
    });
    server = started.server;
    client = greeterClient(started.address);
  });
  after(async () => {
    client.$close();
    await server.shutdown({ graceMs: 100 });
  });

  it("answers a unary call with a typed reply, with unset fields at their defaults", async () => {
    const reply = await client.sayHello({ name: "Ada" });
    expect(reply.message).to.equal("Hello, Ada!");
    expect(reply.servedBy).to.equal("t");
    expect(reply.at).to.equal(undefined);
  });

  it("sends request metadata and receives response headers and trailers", async () => {
    let header: Metadata | undefined;
    let trailer: Metadata | undefined;
    const reply = await client.sayHello({ name: "Bo" }, { metadata: { "x-echo": "hi" }, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
    expect(reply.message).to.equal("Hello, Bo! (hi)");
    expect(header?.get("x-served")).to.deep.equal(["yes"]);
    expect(trailer?.get("x-trailer")).to.deep.equal(["bye"]);
  });

  it("streams server replies in order as an async iterable", async () => {
    const replies = await collect(client.streamHellos({ name: "Cy", count: 5 }));
    expect(replies.map((r) => r.message)).to.deep.equal([1, 2, 3, 4, 5].map((i) => `Hello #${i}, Cy!`));
    expect(replies[0]!.at).to.be.instanceOf(Date);
  });

  it("reads a client stream given as an async generator and answers once", async () => {
    async function* names() {
      for (const name of ["a", "b", "c"]) yield { name };
    }
    const reply = await client.collectHellos(names());
    expect(reply.message).to.equal("Hello, a, b, c!");
  });

  it("accepts a plain array as a client stream", async () => {
    const reply = await client.collectHellos([{ name: "x" }, { name: "y" }]);
    expect(reply.message).to.equal("Hello, x, y!");
  });

  it("answers each bidi message as it arrives (interleaved, not batched)", async () => {
    const outbox: Array<(v: { name: string } | null) => void> = [];
    const queue: Array<{ name: string } | null> = [];
    async function* requests() {
      while (true) {
        const next = queue.length ? queue.shift()! : await new Promise<{ name: string } | null>((r) => outbox.push(r));
        if (next === null) return;
        yield next;
      }
    }
    const push = (v: { name: string } | null) => (outbox.length ? outbox.shift()!(v) : queue.push(v));
    const it = client.chat(requests())[Symbol.asyncIterator]();
    push({ name: "one" });
    expect((await it.next()).value.message).to.equal("Hello, one!");
    push({ name: "two" });
    expect((await it.next()).value.message).to.equal("Hello, two!");
    push(null);
    expect((await it.next()).done).to.equal(true);
  });

  it("runs many concurrent unary calls on one channel", async () => {
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.sayHello({ name: `n${i}` })));
    expect(replies.map((r) => r.message)).to.deep.equal(Array.from({ length: 200 }, (_, i) => `Hello, n${i}!`));
  });

  it("types the definition so a wrong field is a compile error", () => {
    // @ts-expect-error `nam` is not a field of HelloRequest
    const bad: Parameters<typeof client.sayHello>[0] = { nam: "x" };
    expect(bad).to.be.an("object");
    const def: typeof GreeterDefinition = client ? (undefined as never) : (undefined as never);
    expect(def).to.equal(undefined);
  });
});
