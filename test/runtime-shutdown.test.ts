import { expect } from "chai";
import { RpcError, Status, createServer } from "protomesh";
import { startGreeter, greeterClient, delay, GreeterDefinition } from "./helpers/greeter";
import type { Registrar } from "protomesh/registry/registry";
import type { GreeterHandlers } from "../gen/examples/greeter/v1/greeter_protomesh";

describe("runtime: graceful shutdown", () => {
  it("lets an in-flight call finish within the grace period, then refuses new calls", async () => {
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    const { server, address } = await startGreeter({
      async sayHello() {
        started();
        await delay(300);
        return { message: "finished" };
      },
    });
    const client = greeterClient(address);
    const inFlight = client.sayHello({ name: "x" });
    await handlerStarted;
    const t0 = Date.now();
    const closing = server.shutdown({ graceMs: 5000 });
    expect(server.state).to.equal("draining");
    expect((await inFlight).message).to.equal("finished");
    await closing;
    expect(Date.now() - t0).to.be.lessThan(2000);
    expect(server.state).to.equal("closed");
    const fresh = greeterClient(address);
    const e = (await fresh.sayHello({ name: "y" }, { deadlineMs: 1000 }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.be.oneOf([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);
    client.$close();
    fresh.$close();
  });

  it("force-closes after the grace period and aborts the handler's signal", async () => {
    let handlerAborted = false;
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    const { server, address } = await startGreeter({
      async *streamHellos(_r, ctx) {
        ctx.signal.addEventListener("abort", () => (handlerAborted = true));
        started();
        while (!ctx.signal.aborted) {
          yield { message: "tick" };
          await delay(20);
        }
      },
    });
    const client = greeterClient(address);
    const consumed = (async () => {
      try {
        for await (const _ of client.streamHellos({ name: "x" })) {
          // keep reading
        }
        return "ended";
      } catch (e) {
        return (e as RpcError).code;
      }
    })();
    await handlerStarted;
    const t0 = Date.now();
    await server.shutdown({ graceMs: 200 });
    const elapsed = Date.now() - t0;
    expect(elapsed).to.be.within(150, 2000);
    expect(handlerAborted).to.equal(true);
    const outcome = await consumed;
    expect(outcome).to.not.equal(undefined);
    client.$close();
  });

  it("runs lifecycle listeners in order: serving, draining, closed", async () => {
    const events: string[] = [];
    const { server } = await startGreeter();
    server.on("draining", () => void events.push("draining")).on("closed", () => void events.push("closed"));
    await server.shutdown();
    expect(events).to.deep.equal(["draining", "closed"]);
    await server.shutdown(); // a second call is a no-op
    expect(events).to.deep.equal(["draining", "closed"]);
  });

  it("refuses add() after listen() and a second listen()", async () => {
    const { server } = await startGreeter();
    expect(() => server.add(GreeterDefinition, {} as never)).to.throw(/before listen/);
    let err: unknown;
    await server.listen("127.0.0.1:0").catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/serving/);
    await server.shutdown({ graceMs: 10 });
  });
});

describe("runtime: a registration that fails", () => {
  it("rejects listen(), stops serving the bound port, and leaves shutdown() a no-op", async () => {
    let registeredAt: string | undefined;
    const refusing: Registrar = {
      async register(instance) {
        registeredAt = instance.address;
        throw new Error("etcd refused the registration: permission denied");
      },
      async close() {},
    };
    const server = createServer({ name: "greeter", registry: refusing });
    server.add(GreeterDefinition, { async sayHello() { return { message: "should not be reachable" }; } } as unknown as GreeterHandlers);
    const err = await server.listen("127.0.0.1:0").then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/permission denied/);
    expect(server.state).to.equal("closed");
    expect(registeredAt, "it tried to register the bound address").to.match(/^127\.0\.0\.1:\d+$/);
    const client = greeterClient(registeredAt!);
    const callErr = (await client.sayHello({ name: "y" }, { deadlineMs: 1000 }).catch((x: unknown) => x)) as RpcError;
    expect(callErr.code).to.be.oneOf([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);
    client.$close();
    await server.shutdown();
    expect(server.state).to.equal("closed");
  });
});
