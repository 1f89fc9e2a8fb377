import { expect } from "chai";
import { RpcError, Status, type Server, type CallContext } from "protomesh";
import { startGreeter, greeterClient, delay } from "./helpers/greeter";

describe("runtime: deadlines and cancellation", () => {
  const servers: Server[] = [];
  const clients: Array<{ $close(): void }> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.$close();
    await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 100 })));
  });

  async function start(overrides: Parameters<typeof startGreeter>[0], options: Parameters<typeof startGreeter>[1] = {}) {
    const { server, address } = await startGreeter(overrides, options);
    servers.push(server);
    const client = greeterClient(address);
    clients.push(client);
    return { client, address };
  }

  it("fails a slow call with DEADLINE_EXCEEDED and fires the handler's signal", async () => {
    let handlerSignal: AbortSignal | undefined;
    let remaining: number | undefined;
    const aborted = new Promise<unknown>((resolve) => {
      void start({
        async sayHello(_req, ctx) {
          handlerSignal = ctx.signal;
          remaining = ctx.remainingMs();
          ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason));
          await delay(2000);
          return { message: "late" };
        },
      }).then(async ({ client }) => {
        const t0 = Date.now();
        const e = (await client.sayHello({ name: "x" }, { deadlineMs: 150 }).catch((x: unknown) => x)) as RpcError;
        expect(e.code).to.equal(Status.DEADLINE_EXCEEDED);
        expect(Date.now() - t0).to.be.lessThan(1000);
      });
    });
    const reason = (await aborted) as RpcError;
    expect(handlerSignal!.aborted).to.equal(true);
    expect(reason.code).to.be.oneOf([Status.DEADLINE_EXCEEDED, Status.CANCELLED]);
    expect(remaining).to.be.within(1, 150);
  });

  it("exposes no deadline when the caller sets none", async () => {
    let ctxSeen: CallContext | undefined;
    const { client } = await start({
      async sayHello(_r, ctx) {
        ctxSeen = ctx;
        return {};
      },
    });
    await client.sayHello({});
    expect(ctxSeen!.deadline).to.equal(undefined);
    expect(ctxSeen!.remainingMs()).to.equal(undefined);
    expect(ctxSeen!.peer).to.match(/127\.0\.0\.1/);
  });

  it("cancels through an AbortSignal: the client gets CANCELLED, the handler's signal fires", async () => {
    let resolveAbort!: () => void;
    const handlerAborted = new Promise<void>((r) => (resolveAbort = r));
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    const { client } = await start({
      async sayHello(_r, ctx) {
        ctx.signal.addEventListener("abort", () => resolveAbort());
        started();
        await delay(3000);
        return {};
      },
    });
    const ac = new AbortController();
    const call = client.sayHello({ name: "x" }, { signal: ac.signal }).catch((x: unknown) => x);
    await handlerStarted;
    ac.abort();
    const e = (await call) as RpcError;
    expect(e.code).to.equal(Status.CANCELLED);
    await handlerAborted;
  });

  it("rejects at once with CANCELLED when the signal is already aborted", async () => {
    const { client } = await start({});
    const e = (await client.sayHello({ name: "x" }, { signal: AbortSignal.abort() }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.CANCELLED);
  });

  it("stops a server stream when the client breaks out of the loop, and the handler sees the cancel", async () => {
    let resolveAbort!: () => void;
    const handlerAborted = new Promise<void>((r) => (resolveAbort = r));
    const { client } = await start({
      async *streamHellos(_r, ctx) {
        ctx.signal.addEventListener("abort", () => resolveAbort());
        for (let i = 0; ; i++) {
          yield { message: String(i) };
          await delay(5);
        }
      },
    });
    let n = 0;
    for await (const _ of client.streamHellos({ name: "x" })) if (++n === 3) break;
    expect(n).to.equal(3);
    await handlerAborted;
  });

  it("passes the remaining deadline on when a handler calls another service", async () => {
    let downstreamDeadline: number | undefined;
    const { address: downstream } = await start({
      async sayHello(_r, ctx) {
        downstreamDeadline = ctx.deadline;
        return { message: "from downstream" };
      },
    });
    const down = greeterClient(downstream);
    clients.push(down);
    let upstreamDeadline: number | undefined;
    const { client } = await start({
      async sayHello(req, ctx) {
        upstreamDeadline = ctx.deadline;
        const r = await down.sayHello({ name: req.name });
        return { message: `via upstream: ${r.message}` };
      },
    });
    const reply = await client.sayHello({ name: "x" }, { deadlineMs: 800 });
    expect(reply.message).to.equal("via upstream: from downstream");
    expect(upstreamDeadline).to.be.a("number");
    expect(downstreamDeadline).to.be.a("number");
    // Deadlines cross the wire as relative timeouts (grpc-timeout), so the receiver's absolute
    // deadline is later by the transit time; on a loaded machine that can be tens of ms.
    expect(downstreamDeadline!).to.be.at.most(upstreamDeadline! + 100);
    // At most what the caller gave: on a quick machine the whole chain can run inside one
    // millisecond, so the downstream's remaining time can still read exactly 800.
    expect(downstreamDeadline! - Date.now()).to.be.at.most(800);
  });

  it("fails the downstream call when the upstream deadline expires first", async () => {
    const { address: downstream } = await start({
      async sayHello() {
        await delay(1000);
        return {};
      },
    });
    const down = greeterClient(downstream);
    clients.push(down);
    let downstreamCode: number | undefined;
    const { client } = await start({
      async sayHello() {
        try {
          await down.sayHello({}, { deadlineMs: 5000 });
        } catch (e) {
          downstreamCode = (e as RpcError).code;
          throw e;
        }
        return {};
      },
    });
    const e = (await client.sayHello({}, { deadlineMs: 200 }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.DEADLINE_EXCEEDED);
    await delay(100);
    expect(downstreamCode).to.be.oneOf([Status.DEADLINE_EXCEEDED, Status.CANCELLED]);
  });

  it("lets a detached call outlive the handler's deadline", async () => {
    let downstreamDeadline: number | undefined = -1;
    const { address: downstream } = await start({
      async sayHello(_r, ctx) {
        downstreamDeadline = ctx.deadline;
        return {};
      },
    });
    const down = greeterClient(downstream);
    clients.push(down);
    const { client } = await start({
      async sayHello() {
        await down.sayHello({}, { detached: true });
        return {};
      },
    });
    await client.sayHello({}, { deadlineMs: 1000 });
    expect(downstreamDeadline).to.equal(undefined);
  });

  it("with callScope: false, inherits the deadline only through an explicit parent", async () => {
    const seen: Array<number | undefined> = [];
    const { address: downstream } = await start({
      async sayHello(_r, ctx) {
        seen.push(ctx.deadline);
        return {};
      },
    });
    const down = greeterClient(downstream);
    clients.push(down);
    const { client } = await start(
      {
        async sayHello(_r, ctx) {
          await down.sayHello({}); // no scope: nothing to inherit from
          await down.sayHello({}, { parent: ctx });
          return {};
        },
      },
      { callScope: false },
    );
    await client.sayHello({}, { deadlineMs: 1000 });
    expect(seen[0], "without parent").to.equal(undefined);
    expect(seen[1], "with parent").to.be.a("number");
    expect(seen[1]! - Date.now()).to.be.within(1, 1000);
  });

  it("cancels a call made with an explicit parent when the parent call is cancelled", async () => {
    let downstreamAborted: unknown;
    let reachedDownstream!: () => void;
    const reached = new Promise<void>((r) => (reachedDownstream = r));
    const { address: downstream } = await start({
      async sayHello(_r, ctx) {
        reachedDownstream();
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        downstreamAborted = ctx.signal.reason;
        return {};
      },
    });
    const down = greeterClient(downstream);
    clients.push(down);
    let upstreamError: RpcError | undefined;
    const { client } = await start(
      {
        async sayHello(_r, ctx) {
          await down.sayHello({}, { parent: ctx }).catch((e: RpcError) => (upstreamError = e));
          return {};
        },
      },
      { callScope: false },
    );
    const controller = new AbortController();
    const call = client.sayHello({}, { signal: controller.signal }).catch((e: unknown) => e);
    await reached;
    controller.abort();
    expect(((await call) as RpcError).code).to.equal(Status.CANCELLED);
    await delay(200);
    expect(upstreamError?.code).to.equal(Status.CANCELLED);
    expect(downstreamAborted).to.be.instanceOf(RpcError);
  });

  it("answers DEADLINE_EXCEEDED for a deadline already in the past", async () => {
    const { client } = await start({});
    const e = (await client.sayHello({ name: "x" }, { deadlineMs: -5 }).catch((x: unknown) => x)) as RpcError;
    expect(e.code).to.equal(Status.DEADLINE_EXCEEDED);
  });

  it("rejects a NaN deadline with INVALID_ARGUMENT before sending", async () => {
    const { client } = await start({});
    let thrown: unknown;
    try {
      await client.sayHello({ name: "x" }, { deadlineMs: Number.NaN });
    } catch (e) {
      thrown = e;
    }
    expect((thrown as RpcError).code).to.equal(Status.INVALID_ARGUMENT);
  });
});
