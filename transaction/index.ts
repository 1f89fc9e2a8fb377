/**
 * protomesh/transaction: distributed transactions across protomesh services — TCC with a
 * sub-transaction barrier, saga, reliable messages and best-effort notification. The
 * coordinator is itself a protomesh service; participants are ordinary methods.
 *
 * Caller API first, then participants (barrier), then running the coordinator.
 */
export {
  createTxClient,
  expectSucceeded,
  newGid,
  TxFailedError,
  TxOutcomeUnknownError,
  type TxClient,
  type TxClientOptions,
  type TxOptionsInput,
  type TxOutcome,
  type NotificationRequest,
  type TccBranches,
  type Saga,
  type SagaStepOptions,
  type Message,
} from "./client/tx-client";
export { participant, type Participant, type TccName, type UnaryName, type RequestOf, type ResponseOf, type SameRequest } from "./client/participant";

// Participants: the barrier and its adapters.
export { Barrier, BARRIER_TABLE, MSG_BRANCH, type BarrierDriver, type BarrierRow, type BarrierResult, type BarrierSkip } from "./barrier/barrier";
export { pgBarrier } from "./barrier/adapter-pg";
export { pgliteBarrier } from "./barrier/adapter-pglite";
export { sqliteBarrier } from "./barrier/adapter-sqlite";
export { postgresBarrierSchema, sqliteBarrierSchema } from "./barrier/schema";
export { MIN_RETENTION_MS, type PruneOptions, type PeriodicPruneOptions } from "./barrier/prune";
export { branchCallOf, branchMetadata, TX_METADATA, type BranchCall, type BarrierOp } from "./barrier/call-info";
export { queryPreparedHandler } from "./barrier/query-prepared";

// Running the coordinator.
export { createTxServer, DEFAULT_TX_SERVICE, type TxServer, type TxServerOptions } from "./server/tx-server";
export { Coordinator, QUERY_PREPARED_METHOD, type CoordinatorOptions } from "./coordinator/coordinator";
export { DEFAULT_SETTINGS, backoffMs } from "./coordinator/settings";
export type { TxAlert, AlertOptions } from "./coordinator/alerts";
export { postgresStore, embeddedStore } from "./store/open-store";
export type { TxStore, TxMode, TxStatus, TxSettings, GlobalRow, BranchRow, AttemptRow } from "./store/types";

// Generated service definitions of the coordinator and the producer's query-back.
export { TxCoordinatorDefinition, TxProducerDefinition, type TxCoordinatorClient, type TxCoordinatorHandlers, type TxProducerHandlers } from "../gen/protomesh/transaction/v1/coordinator_protomesh";
