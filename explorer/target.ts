import * as grpc from "@grpc/grpc-js";
import { CliError, UsageError } from "../cli/command";
import { cliEtcdEndpoints } from "../cli/etcd-endpoints";
import { DISCOVERY_OPTION } from "../registry/registry";

/** A channel to what the user named on the command line. */
export interface OpenedTarget {
  readonly target: string;
  readonly client: grpc.Client;
  /** Closes the channel and, for a registry target, the registry connection. */
  close(): Promise<void>;
}

/**
 * Opens `host:port`, any grpc-js target (`dns:…`, `ipv4:…`), or `etcd:///service`.
 * For `etcd:///` the registry is reached through `ETCD_ENDPOINTS` (and
 * `PROTOMESH_NAMESPACE`) from `env`, and addresses come from it, so the user
 * never looks one up. The etcd code is loaded only for such targets.
 */
export function openTarget(target: string, env: NodeJS.ProcessEnv): OpenedTarget {
  if (target.trim() === "") throw new UsageError("the target is empty; use host:port or etcd:///service");
  const options: grpc.ChannelOptions = {};
  let closeRegistry: (() => Promise<void>) | undefined;
  if (/^etcd:/i.test(target)) {
    const etcd = require("../registry/etcd") as typeof import("../registry/etcd");
    etcd.registerEtcdResolver();
    let registry: ReturnType<typeof etcd.etcdRegistry>;
    try {
      registry = etcd.etcdRegistry({
        endpoints: cliEtcdEndpoints(undefined, env),
        namespace: env.PROTOMESH_NAMESPACE,
      });
    } catch (err) {
      throw new CliError(`cannot resolve ${target}: ${err instanceof Error ? err.message : String(err)}`);
    }
    options[DISCOVERY_OPTION] = registry;
    closeRegistry = () => registry.close();
  }
  let client: grpc.Client;
  try {
    client = new grpc.Client(target, grpc.credentials.createInsecure(), options);
  } catch (err) {
    void closeRegistry?.();
    throw new UsageError(`bad target ${JSON.stringify(target)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    target,
    client,
    async close() {
      client.close();
      await closeRegistry?.();
    },
  };
}
