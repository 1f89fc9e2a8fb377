import * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition } from "./definition";
import { Status } from "./errors";
import { healthMessages, HEALTH_SERVICE, SERVING_STATUS, type ServingStatus } from "./health-proto";
import { messageCodec } from "./message-codec";

export { HEALTH_SERVICE, type ServingStatus } from "./health-proto";

/** A status a service can be set to by hand. */
export type SettableStatus = "SERVING" | "NOT_SERVING";

/**
 * The serving status a server reports through `grpc.health.v1.Health`, per
 * service and overall (`""`). It follows the server's lifecycle: SERVING once
 * listening, NOT_SERVING from the moment shutdown starts. While the server
 * serves, a service can be marked NOT_SERVING by hand, for instance by a
 * handler that lost its database.
 *
 * @example
 *   server.health.set("shop.v1.Orders", "NOT_SERVING");
 *   server.health.set("shop.v1.Orders", "SERVING");
 */
export interface Health {
  /**
   * Sets the status of `service` (a fully-qualified service name, or `""` for the
   * whole server) while the server is serving. A name not served by the server
   * becomes known from then on. Shutdown overrides it: a draining server is
   * NOT_SERVING whatever was set.
   */
  set(service: string, status: SettableStatus): void;
  /** Forgets a status set by hand: the service follows the server's lifecycle again. */
  reset(service: string): void;
  /** What a health check of `service` would answer now. */
  status(service: string): ServingStatus;
}

type Phase = "idle" | "serving" | "stopping";

interface Watcher {
  readonly service: string;
  last: ServingStatus | undefined;
  readonly push: (status: ServingStatus) => void;
  readonly end: () => void;
}

/** The status board behind {@link Health}, with the watchers of the Watch method. */
export class HealthBoard implements Health {
  private phase: Phase = "idle";
  private readonly manual = new Map<string, SettableStatus>();
  private readonly watchers = new Set<Watcher>();

  /** `served` lists the services the server serves; read on each query. */
  constructor(private readonly served: () => Iterable<string>) {}

  set(service: string, status: SettableStatus): void {
    if (status !== "SERVING" && status !== "NOT_SERVING") throw new TypeError(`health.set: status must be "SERVING" or "NOT_SERVING", got ${String(status)}`);
    this.manual.set(service, status);
    this.notify();
  }

  reset(service: string): void {
    this.manual.delete(service);
    this.notify();
  }

  status(service: string): ServingStatus {
    if (!this.isKnown(service)) return "SERVICE_UNKNOWN";
    if (this.phase !== "serving") return "NOT_SERVING";
    return this.manual.get(service) ?? "SERVING";
  }

  /** The server is listening: everything not set by hand is SERVING. */
  serving(): void {
    this.phase = "serving";
    this.notify();
  }

  /**
   * Shutdown started: everything is NOT_SERVING. Watchers hear it, then their
   * streams end; an open Watch would otherwise hold the drain until the grace
   * period is over.
   */
  stopping(): void {
    this.phase = "stopping";
    this.notify();
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.end();
    }
  }

  /**
   * Reports the status of `service` now and on every change. After shutdown
   * started the current status is reported and `end` is called at once.
   * Returns the function that stops watching.
   */
  watch(service: string, push: (status: ServingStatus) => void, end: () => void): () => void {
    const watcher: Watcher = { service, last: undefined, push, end };
    this.report(watcher);
    if (this.phase === "stopping") {
      end();
      return () => undefined;
    }
    this.watchers.add(watcher);
    return () => void this.watchers.delete(watcher);
  }

  private isKnown(service: string): boolean {
    if (service === "" || this.manual.has(service)) return true;
    for (const name of this.served()) if (name === service) return true;
    return false;
  }

  private notify(): void {
    for (const w of this.watchers) this.report(w);
  }

  private report(w: Watcher): void {
    const status = this.status(w.service);
    if (status === w.last) return;
    w.last = status;
    w.push(status);
  }
}

interface CheckRequest {
  service: string;
}
interface CheckResponse {
  status: number;
}

/** Adds `grpc.health.v1.Health` (Check and Watch) answering from `board` to a grpc-js server. */
export function addHealthService(server: grpc.Server, board: HealthBoard): void {
  const messages = healthMessages();
  const request = messageCodec<CheckRequest>(messages.request);
  const response = messageCodec<CheckResponse>(messages.response);
  const method = (name: string, responseStream: boolean): grpc.MethodDefinition<CheckRequest, CheckResponse> => ({
    path: `/${HEALTH_SERVICE}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: request.serialize,
    requestDeserialize: request.deserialize,
    responseSerialize: response.serialize,
    responseDeserialize: response.deserialize,
    originalName: name.toLowerCase(),
  });
  const toWire = (status: ServingStatus): CheckResponse => ({ status: SERVING_STATUS.indexOf(status) });
  server.addService(
    { Check: method("Check", false), Watch: method("Watch", true) },
    {
      Check: (call: grpc.ServerUnaryCall<CheckRequest, CheckResponse>, callback: grpc.sendUnaryData<CheckResponse>) => {
        const status = board.status(call.request.service);
        // The health protocol answers Check for an unknown service with NOT_FOUND (Watch reports SERVICE_UNKNOWN instead).
        if (status === "SERVICE_UNKNOWN") callback({ code: Status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
        else callback(null, toWire(status));
      },
      Watch: (call: grpc.ServerWritableStream<CheckRequest, CheckResponse>) => {
        const stop = board.watch(call.request.service, (status) => void call.write(toWire(status)), () => call.end());
        call.on("cancelled", stop);
        call.on("error", stop);
      },
    },
  );
}

/**
 * Wires health into a protomesh server: the board follows the lifecycle events
 * (registered first, so NOT_SERVING is reported before the registration is
 * withdrawn) and is served when `serve` is true.
 */
export function attachHealth(
  server: {
    readonly grpc: grpc.Server;
    readonly services: readonly ServiceDefinition[];
    on(event: "serving" | "draining" | "closed", listener: () => void): unknown;
  },
  serve: boolean,
): HealthBoard {
  const board = new HealthBoard(() => server.services.map((d) => d.typeName));
  server.on("serving", () => board.serving());
  server.on("draining", () => board.stopping());
  if (serve) addHealthService(server.grpc, board);
  return board;
}
