import * as net from "node:net";
import { expect } from "chai";
import { startConsole } from "../console";
import { Backoff } from "../registry/etcd/backoff";
import { runListWatch } from "../registry/etcd/list-watch";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";

/** Resolves to "ended", or to "still running" after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<"ended" | "still running"> {
  return Promise.race([p.then(() => "ended" as const, () => "ended" as const), new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), ms))]);
}

describe("list-then-watch loop: stopping (real etcd)", function () {
  this.timeout(30_000);
  const fixture = useEmbeddedEtcd();

  it("ends when it is stopped while the prefix is being read, without opening a watch", async () => {
    const client = fixture.rawEtcd();
    const stop = new AbortController();
    let watching = false;
    const loop = runListWatch(
      {
        client,
        prefix: "/list-watch-stop/",
        callTimeoutMs: 2000,
        backoff: new Backoff(),
        sync: async () => {
          await client.get("/list-watch-stop/x").string();
          stop.abort(); // the owner stops while the read is in flight; the read still succeeds
        },
        revision: () => 1n,
        apply: () => undefined,
        onWatching: () => void (watching = true),
        onFailure: () => undefined,
        onCompacted: () => undefined,
      },
      stop.signal,
    );
    expect(await within(loop, 3000)).to.equal("ended");
    expect(watching).to.equal(false);
  });

  it("lets a console that cannot bind its port close everything and reject (it hung before)", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const started = startConsole({ endpoints: fixture.endpoints, namespace: uniqueNamespace(), port });
      expect(await within(started, 10_000)).to.equal("ended");
      const error = await started.then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (e: NodeJS.ErrnoException) => e,
      );
      expect(error?.code).to.equal("EADDRINUSE");
    } finally {
      taken.close();
    }
  });
});
