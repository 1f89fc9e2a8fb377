import * as grpc from "@grpc/grpc-js";
import { DISCOVERY_OPTION } from "../runtime/balancing/instances";
import "../registry/etcd/register";

/**
 * One grpc-js channel per upstream target, shared by every route to it.
 * `etcd:///<name>` targets resolve through the registry and balance inside
 * grpc-js like any protomesh client (the same LB policies and, once set, the
 * same traffic rules).
 */
export class Upstreams {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(
    private readonly discovery: unknown,
    private readonly balancer: string = "round_robin",
  ) {}

  client(target: string): grpc.Client {
    let c = this.clients.get(target);
    if (!c) {
      const options: grpc.ChannelOptions = {
        "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ [this.balancer]: {} }] }),
        "grpc.service_config_disable_resolution": 1,
        "grpc.enable_retries": 1,
      };
      if (this.discovery !== undefined) options[DISCOVERY_OPTION] = this.discovery;
      c = new grpc.Client(target, grpc.credentials.createInsecure(), options);
      this.clients.set(target, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
