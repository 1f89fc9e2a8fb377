/**
 * Load through real `etcd:///greeter` clients for release specs: each client has its own registry
 * connection, resolver and balancer, so it follows the service's traffic rule exactly as a user's
 * client does, and the load records per call which client made it, which version answered and
 * whether it failed. Stopped by the root leftovers hook if a spec fails before `stop()`.
 */
import { createClient, etcdRegistry, type ClientHandle, type EtcdRegistry, type RpcError } from "protomesh";
import { GreeterDefinition, type GreeterClient } from "../../gen/examples/greeter/v1/greeter_protomesh";
import { stopAfterTest } from "./leftovers";

export interface ReleaseCall {
  readonly client: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** The version of the instance that answered, failures included ("?" when no instance did). */
  readonly version: string;
  readonly ok: boolean;
  readonly tester: boolean;
  readonly code?: number;
}

export interface ReleaseLoadOptions {
  readonly endpoints: string[];
  readonly namespace: string;
  /** Instance id → version, to name the side of every answer. */
  readonly versions: ReadonlyMap<string, string>;
  /** Clients, each with its own etcd connection and channel (default 3). */
  readonly clients?: number;
  /** Calls in flight per client (default 4). */
  readonly concurrency?: number;
  /** Share of calls sent with `x-tester: yes` (default 0). */
  readonly testerShare?: number;
  readonly balancer?: "round_robin" | "p2c";
}

export class ReleaseLoad {
  readonly calls: ReleaseCall[] = [];
  private readonly registries: EtcdRegistry[] = [];
  private readonly clients: Array<GreeterClient & ClientHandle> = [];
  private readonly loops: Promise<void>[] = [];
  private running = true;
  private stopped: Promise<void> | undefined;

  private constructor(private readonly options: ReleaseLoadOptions) {}

  /** Starts the clients and their callers; resolves at once (the first calls wait for the resolver). */
  static start(options: ReleaseLoadOptions): ReleaseLoad {
    const load = new ReleaseLoad(options);
    for (let c = 0; c < (options.clients ?? 3); c++) {
      const discovery = etcdRegistry({ endpoints: options.endpoints, namespace: options.namespace });
      load.registries.push(discovery);
      load.clients.push(createClient(GreeterDefinition, "etcd:///greeter", { discovery, balancer: options.balancer ?? "round_robin" }));
      for (let k = 0; k < (options.concurrency ?? 4); k++) load.loops.push(load.loop(c, k));
    }
    return stopAfterTest(load);
  }

  private async loop(client: number, worker: number): Promise<void> {
    const greeter = this.clients[client]!;
    let n = 0;
    while (this.running) {
      const tester = (this.options.testerShare ?? 0) > 0 && Math.random() < this.options.testerShare!;
      const user = `u${client}-${worker}-${n++ % 50}`;
      const startedAt = Date.now();
      let version = "?";
      let ok = true;
      let code: number | undefined;
      try {
        const reply = await greeter.sayHello({ name: user }, { deadlineMs: 10_000, metadata: { "x-user": user, ...(tester ? { "x-tester": "yes" } : {}) } });
        version = this.options.versions.get(reply.servedBy) ?? "?";
      } catch (err) {
        ok = false;
        code = (err as RpcError).code;
        // The fleet's failing handlers name themselves in the message: "canary bug in <id>".
        const id = /canary bug in (\S+)/.exec((err as Error).message)?.[1];
        version = (id && this.options.versions.get(id)) || "?";
      }
      this.calls.push({ client, startedAt, endedAt: Date.now(), version, ok, tester, code });
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Calls so far made by `client` (all clients when undefined), in order of their end. */
  of(client?: number): ReleaseCall[] {
    return client === undefined ? this.calls : this.calls.filter((c) => c.client === client);
  }

  /** Resolves once `more` further calls have ended. */
  async next(more: number, timeoutMs = 60_000): Promise<void> {
    const want = this.calls.length + more;
    const deadline = Date.now() + timeoutMs;
    while (this.calls.length < want) {
      if (Date.now() > deadline) throw new Error(`only ${this.calls.length - want + more} of ${more} calls ended within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Waits until every client has made `streak` calls that `accept` takes, all started after its
   * last call since `since` that `accept` refuses, and returns per client the start of that last
   * refused call (or `since` when there was none): when that client stopped sending such calls.
   */
  async settled(since: number, accept: (c: ReleaseCall) => boolean, { streak = 50, timeoutMs = 60_000 } = {}): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lastRefused = this.clients.map(() => since);
      for (const c of this.calls) if (c.startedAt >= since && !accept(c)) lastRefused[c.client] = Math.max(lastRefused[c.client]!, c.startedAt);
      const run = this.clients.map(() => 0);
      for (const c of this.calls) if (c.startedAt > lastRefused[c.client]!) run[c.client]!++;
      if (run.every((r) => r >= streak)) return lastRefused;
      if (Date.now() > deadline) throw new Error(`not every client settled within ${timeoutMs} ms (streaks ${run.join(", ")} of ${streak})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.running = false;
      await Promise.all(this.loops);
      for (const c of this.clients) c.$close();
      await Promise.all(this.registries.map((r) => r.close()));
    })();
    return this.stopped;
  }
}
