import { RpcError, Status } from "../../runtime/errors";
import type { TxProducerHandlers } from "../../gen/protomesh/transaction/v1/coordinator_protomesh";
import type { Barrier } from "./barrier";
import { checkBranchCall } from "./call-info";

/**
 * The producer's TxProducer service over its barrier: OK when the message's local transaction
 * committed, ABORTED when it rolled back (and now never will commit).
 *
 * @example
 *   server.add(TxProducerDefinition, queryPreparedHandler(pgBarrier(pool)));
 */
export function queryPreparedHandler<Tx>(barrier: Barrier<Tx>): TxProducerHandlers {
  return {
    async queryPrepared(req) {
      checkBranchCall({ mode: "msg", gid: req.gid, branchId: "00", op: "msg" });
      const state = await barrier.queryPrepared(req.gid);
      if (state === "rolledback") throw new RpcError(Status.ABORTED, `message ${req.gid}: the local transaction rolled back`);
      return {};
    },
  };
}
