/**
 * `createTxServer`: the coordinator as a protomesh service. It registers under its name
 * (default `protomesh-tx`) like any service, so callers dial `etcd:///protomesh-tx`; run as many
 * instances as you like against one store.
 */
import { createServer, type Server, type ServerOptions } from "../../runtime/server";
import { TxCoordinatorDefinition } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import { Coordinator, type CoordinatorOptions } from "../coordinator/coordinator";
import { embeddedStore } from "../store/open-store";
import type { TxStore } from "../store/types";
import { txServiceHandlers, type TxServiceOptions } from "./tx-service";

/** The name the coordinator registers under unless told otherwise. */
export const DEFAULT_TX_SERVICE = "protomesh-tx";

export interface TxServerOptions extends CoordinatorOptions, TxServiceOptions {
  /** Where transactions live (default: an in-memory embedded store — for demos and tests only). */
  store?: TxStore;
  /** Options of the protomesh server (name defaults to `protomesh-tx`). */
  server?: ServerOptions;
  /** Close the store on shutdown (default: when the server opened it). */
  closeStore?: boolean;
}

export interface TxServer {
  readonly server: Server;
  readonly coordinator: Coordinator;
  readonly store: TxStore;
  /** Listens (and registers, with a registry), then starts driving due transactions. */
  listen(address?: string): Promise<number>;
  /** Stops driving, deregisters and drains the server, then closes the store if it owns it. */
  shutdown(): Promise<void>;
}

/**
 * Creates a coordinator server.
 *
 * @example
 *   const tx = await createTxServer({ store: await postgresStore(url), server: { registry } });
 *   await tx.listen("0.0.0.0:7070");
 */
export async function createTxServer(options: TxServerOptions = {}): Promise<TxServer> {
  const ownStore = options.store === undefined;
  const store = options.store ?? (await embeddedStore());
  const coordinator = new Coordinator(store, options);
  const server = createServer({ name: DEFAULT_TX_SERVICE, ...options.server });
  server.add(TxCoordinatorDefinition, txServiceHandlers(coordinator, options));
  let closed = false;
  return {
    server,
    coordinator,
    store,
    async listen(address = "127.0.0.1:0") {
      const port = await server.listen(address);
      coordinator.start();
      void coordinator.poll(); // pick up what is already due without waiting one interval
      return port;
    },
    async shutdown() {
      if (closed) return;
      closed = true;
      await coordinator.stop();
      await server.shutdown();
      if (options.closeStore ?? ownStore) await store.close();
    },
  };
}
