import { expect } from "chai";
import { RpcError, Status, type Server, setLogger, createJsonLogger } from "protomesh";
import { startGreeter, greeterClient } from "./helpers/greeter";

describe("runtime: typed errors", () => {
  let server: Server;
  let client: ReturnType<typeof greeterClient>;
  const logged: string[] = [];

  before(async () => {
    setLogger(createJsonLogger({ level: "error", write: (l) => logged.push(l) }));
    const started = await startGreeter({
      async sayHello(req) {
        if (req.name === "missing") throw new RpcError(Status.NOT_FOUND, "no such person", { name: req.name, hints: ["try again"] });
        if (req.name === "boom") throw new Error("secret internal detail at /srv/app.ts:42");
        if (req.name === "string") throw "a thrown string";
        return { message: "ok" };
      },
      async *streamHellos(req) {
        yield { message: "first" };
        yield { message: "second" };
        throw new RpcError(Status.FAILED_PRECONDITION, "stream broke", { after: 2 });
      },
      async collectHellos(requests) {
        for await (const r of requests) if (r.name === "bad") throw new RpcError(Status.INVALID_ARGUMENT, "bad name in stream");
        return { message: "done" };
      },
    });
    server = started.server;
    client = greeterClient(started.address);
  });
  after(async () => {
    setLogger(createJsonLogger());
    client.$close();
    await server.shutdown({ graceMs: 100 });
  });

  it("delivers the code, message and details of an RpcError thrown in a handler", async () => {
    const err = await client.sayHello({ name: "missing" }).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RpcError);
    const e = err as RpcError;
    expect(e.code).to.equal(Status.NOT_FOUND);
    expect(e.rawMessage).to.equal("no such person");
    expect(e.details).to.deep.equal({ name: "missing", hints: ["try again"] });
    expect(e.message).to.contain("NOT_FOUND");
  });

  it("turns an unknown exception into INTERNAL without leaking its message or stack", async () => {
    const e = (await client.sayHello({ name: "boom" }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.INTERNAL);
    expect(e.rawMessage).to.equal("internal error");
    expect(JSON.stringify(e.details ?? null)).not.to.contain("secret");
    expect(e.metadata.toJSON ? JSON.stringify(e.metadata.toJSON()) : "").not.to.contain("secret");
    expect(logged.join("\n")).to.contain("secret internal detail");
  });

  it("treats a thrown non-Error as INTERNAL too", async () => {
    const e = (await client.sayHello({ name: "string" }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.INTERNAL);
  });

  it("delivers messages sent before a streaming error, then the error with details", async () => {
    const seen: string[] = [];
    let caught: RpcError | undefined;
    try {
      for await (const r of client.streamHellos({ name: "x" })) seen.push(r.message);
    } catch (e) {
      caught = e as RpcError;
    }
    expect(seen).to.deep.equal(["first", "second"]);
    expect(caught).to.be.instanceOf(RpcError);
    expect(caught!.code).to.equal(Status.FAILED_PRECONDITION);
    expect(caught!.details).to.deep.equal({ after: 2 });
  });

  it("fails a client stream with the handler's error", async () => {
    const e = (await client.collectHellos([{ name: "ok" }, { name: "bad" }]).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.INVALID_ARGUMENT);
    expect(e.rawMessage).to.equal("bad name in stream");
  });

  it("cancels the call and rethrows when the client's request stream throws", async () => {
    async function* broken() {
      yield { name: "a" };
      throw new Error("producer failed");
    }
    const e = (await client.collectHellos(broken()).catch((x: unknown) => x)) as RpcError;
    expect(e).to.be.instanceOf(RpcError);
    expect(e.code).to.equal(Status.CANCELLED);
  });

  it("answers UNAVAILABLE when nothing listens at the target", async () => {
    const c = greeterClient("127.0.0.1:1");
    const e = (await c.sayHello({ name: "x" }, { deadlineMs: 2000 }).catch((x: unknown) => x)) as RpcError;
    c.$close();
    expect(e.code).to.equal(Status.UNAVAILABLE);
  });

  it("RpcError.from keeps RpcErrors and maps AbortError to CANCELLED", () => {
    const orig = new RpcError(Status.ABORTED, "x");
    expect(RpcError.from(orig)).to.equal(orig);
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(RpcError.from(abort).code).to.equal(Status.CANCELLED);
    expect(RpcError.from(new Error("y")).code).to.equal(Status.INTERNAL);
  });
});
